"""The `overseer` command line. `python -m overseer` works too."""

from overseer.cli.main import app, main

__all__ = ["app", "main"]
