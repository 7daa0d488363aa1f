"""The Typer app type every command group of overseer is made with, so that all help reads alike.

typer 0.29 writes a required argument as `{input}` in the usage line and gives every on/off flag a `<bool>` type
column; our help (and the README's synopses) say `INPUT` and show flags bare. A bare group (`overseer`,
`overseer runs`) prints its help and exits 2, as click does, but without the traceback typer 0.29 shows when the
caller runs it in non-standalone mode (see main.run_app)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def _tidy(params: list[Any]) -> None:
    for param in params:
        if isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
        elif isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # the type column shows the metavar: nothing, for a flag


# A line break inside a paragraph, unless the next line starts a list item or is indented.
_SOFT_BREAK = re.compile(r"\n(?![-*•] |\s)")
_HYPHEN_BREAK = re.compile(r"(?<=\w-)\n(?=\w)")  # "prompt-\nimprovement" is one word


def _reflow(text: str | None) -> str | None:
    """typer 0.29 rewraps a docstring's first paragraph but keeps the source line breaks of the others, so they
    print as ragged half-lines; joining each paragraph's lines lets rich wrap them to the terminal."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else _SOFT_BREAK.sub(" ", _HYPHEN_BREAK.sub("", p))
                       for p in paragraphs)


class _Tidied:
    """Mixed into the command and group classes below: parameters and the help option get our metavars, and the
    help text is reflowed."""

    params: list[Any]
    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)
        self.help = _reflow(self.help)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        _tidy([option])
        return option


class Command(_Tidied, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar if param.required else f"[{param.metavar}]"
                pieces.append(f"{name}..." if param.nargs != 1 else str(name))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(_Tidied, TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            text = ctx.get_help()  # rich help prints itself and returns ""; plain help returns the text
            if text:
                typer.echo(text)
            raise typer.Exit(2)
        return super().parse_args(ctx, args)


class App(typer.Typer):
    """A Typer whose commands and groups are the classes above; bare, it prints its help."""

    def __init__(self, *, help: str, **kwargs: Any) -> None:
        super().__init__(help=help, cls=Group, no_args_is_help=True, add_completion=False,
                         pretty_exceptions_enable=False, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,  # type: ignore[override]
                **kwargs: Any) -> Any:
        return super().command(name, cls=cls or Command, **kwargs)
