from overseer.cli.main import main

main()
