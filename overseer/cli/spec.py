"""`overseer spec show|clauses`: what a Markdown spec holds."""

from __future__ import annotations

from typing import Annotated

import typer

from overseer.cli.app import App
from overseer.cli.options import out

spec_app = App(help="Inspect a Markdown spec (clauses are headings with {#clause_id} anchors).")


@spec_app.command("show")
def spec_show(file: Annotated[str, typer.Argument(help="Spec file or shipped spec name.")]) -> None:
    """Summary of a spec: name, hash, clause tree."""
    from overseer.spec import load_spec

    spec = load_spec(file)
    out.print(f"[bold]{spec.name}[/]  {len(spec.clauses)} clauses  sha256 {spec.hash[:16]}  ({spec.source})")
    for c in spec.clauses:
        out.print(f"{'  ' * (c.level - 1)}[cyan]{c.id}[/]  {c.title}  [dim]{len(c.text):,} chars[/]")


@spec_app.command("clauses")
def spec_clauses(file: Annotated[str, typer.Argument(help="Spec file or shipped spec name.")],
                 as_json: Annotated[bool, typer.Option("--json", help="Full clauses as JSON.")] = False) -> None:
    """List the clause ids (or dump every clause with --json)."""
    from overseer.spec import load_spec

    spec = load_spec(file)
    if as_json:
        out.print_json(spec.model_dump_json())
        return
    for c in spec.clauses:
        out.print(f"{c.id}\t{c.path}", highlight=False)
