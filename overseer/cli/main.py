"""The `overseer` command line: the app, its commands in the order `--help` lists them, and the entry point.
`python -m overseer` works too."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.markup import escape

from overseer import __version__
from overseer.cli.app import App
from overseer.cli.audit import audit
from overseer.cli.evaluate import evaluate
from overseer.cli.improve import improve
from overseer.cli.judge import judge
from overseer.cli.memory import memory_app, seed
from overseer.cli.options import err
from overseer.cli.prompts import prompts_app
from overseer.cli.report import report
from overseer.cli.review import review, reviews_app
from overseer.cli.runs import runs_app
from overseer.cli.spec import spec_app
from overseer.errors import AuthenticationError, OverseerError

app = App(help="overseer: judge model outputs against a written model spec, with humans in the loop.")


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"overseer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print overseer's version and exit.")] = False) -> None:
    pass


app.command()(judge)
app.command("eval")(evaluate)
app.add_typer(runs_app, name="runs")
app.command()(report)
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
    """Run the CLI on `args` and return the exit code. Errors print as one line on stderr, never a traceback:
    usage errors exit 2 (as click's do), OverseerErrors 2, an authentication failure 3."""
    try:
        # Non-standalone click returns the code of a typer.Exit instead of raising it.
        code = app(args=_normalise_resume(args), prog_name="overseer", standalone_mode=False)
    except AuthenticationError as exc:
        return _fail(str(exc), 3)
    except OverseerError as exc:
        return _fail(str(exc), 2)
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        return 130
    except typer.TyperException as exc:
        # typer 0.29 raises its own bundled click's exceptions (typer._click), which the separate `click`
        # package's ClickException does not catch; TyperException is their public base. Usage errors carry
        # the context of the command they were raised in, so the hint names that command's --help.
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        return _fail(exc.format_message() + hint, exc.exit_code)
    return code if isinstance(code, int) else 0


def _fail(message: str, code: int) -> int:
    err.print("[red]error:[/]", escape(message), highlight=False)
    return code


def main() -> None:
    sys.exit(run_app(sys.argv[1:]))
