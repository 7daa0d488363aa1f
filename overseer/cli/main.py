"""The `overseer` command line: the app, its commands in the order `--help` lists them, and the entry point.
`python -m overseer` works too."""

from __future__ import annotations

import re
import sys

import click
import typer

from overseer.cli.audit import audit
from overseer.cli.evaluate import evaluate
from overseer.cli.improve import improve
from overseer.cli.judge import judge
from overseer.cli.memory import memory_app, seed
from overseer.cli.options import err
from overseer.cli.prompts import prompts_app
from overseer.cli.review import review, reviews_app
from overseer.cli.runs import runs_app
from overseer.cli.spec import spec_app
from overseer.errors import AuthenticationError, OverseerError

app = typer.Typer(help="overseer: judge model outputs against a written model spec, with humans in the loop.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command()(judge)
app.command("eval")(evaluate)
app.add_typer(runs_app, name="runs")
app.add_typer(spec_app, name="spec")
app.add_typer(memory_app, name="memory")
app.command()(seed)
app.add_typer(prompts_app, name="prompts")
app.command()(improve)
app.command()(review)
app.command()(audit)
app.add_typer(reviews_app, name="reviews")

RUN_ID = re.compile(r"^run-\d{8}-\d{6}-[0-9a-f]{4}$")


def _normalise_resume(argv: list[str]) -> list[str]:
    """`--resume` takes an optional run id: bare `--resume` means the latest unfinished run of the input."""
    fixed: list[str] = []
    for i, arg in enumerate(argv):
        fixed.append(arg)
        if arg == "--resume":
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or not RUN_ID.match(following):
                fixed.append("latest")
    return fixed


def run_app(args: list[str]) -> int:
    """Run the CLI on `args` and return the exit code; OverseerErrors print as one clear line, no traceback."""
    try:
        # Non-standalone click returns the code of a typer.Exit instead of raising it.
        code = app(args=_normalise_resume(args), prog_name="overseer", standalone_mode=False)
    except AuthenticationError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 3
    except OverseerError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:  # usage errors arrive here in non-standalone mode
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run_app(sys.argv[1:]))
