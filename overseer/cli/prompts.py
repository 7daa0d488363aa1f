"""`overseer prompts ...`: inspect the versioned judging prompts, switch between them, and report what the
optimizer tried (every candidate, accepted or rejected, with its κ on the validation split)."""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from overseer.cli.app import App
from overseer.cli.options import AsJson, Workspace, err, load_settings, out
from overseer.errors import OverseerError

if TYPE_CHECKING:
    from overseer.prompt_store import PromptStore
    from overseer.store.runs import RunStore
    from overseer.types import PromptVersion

prompts_app = App(
    help="Versioned judging prompts. Version 1 ships with overseer; versions written by the optimizer (or by "
    "hand) live in WORKSPACE/prompts/judge/vN.md and are never overwritten. One pointer says which version the "
    "judge uses; `activate` and `rollback` move it.")

ROLE = "judge"
SPARK = "▁▂▃▄▅▆▇█"
NONE = "—"

VersionArg = Annotated[str, typer.Argument(help="Version number, e.g. 2 or v2.", show_default=False,
                                           metavar="VERSION")]


def _workspace(workspace: Path | None) -> Path:
    return load_settings(workspace=workspace).workspace


def _store(workspace: Path | None) -> PromptStore:
    from overseer.prompt_store import PromptStore

    return PromptStore(_workspace(workspace), role=ROLE)


def _version(text: str) -> int:
    match = re.fullmatch(r"\s*[vV]?(\d+)\s*", text)
    if not match:
        raise OverseerError(f"a prompt version is a number like 2 or v2, not {text!r}")
    return int(match.group(1))


def _number(value: Any) -> float | None:
    """A metric as a float, or None when it is missing or not a number (NaN included: κ is undefined there)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _kappa(metrics: dict[str, Any], key: str = "kappa_val") -> float | None:
    """κ on validation; a version's front matter may spell it `kappa` (the metrics it was made with)."""
    found = _number(metrics.get(key))
    return found if found is not None or key != "kappa_val" else _number(metrics.get("kappa"))


def _fmt(value: float | None, digits: int = 3) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def _delta(new: float, old: float) -> str:
    """`+0.061`; counts (both values whole numbers, e.g. n_val) as `+12`."""
    if new.is_integer() and old.is_integer():
        return f"{int(new - old):+d}"
    return f"{new - old:+.3f}"


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _header(prompt: PromptVersion) -> dict[str, Any]:
    return {"role": prompt.role, "version": prompt.version, "parent": prompt.parent,
            "created_by": prompt.created_by, "created_at": prompt.created_at.isoformat(), "hash": prompt.hash,
            "required_placeholders": prompt.required_placeholders, "metrics": prompt.metrics,
            "source": prompt.source, "judge_backend": prompt.judge_backend,
            "reflection_backend": prompt.reflection_backend, "path": prompt.path}


# --- versions ---------------------------------------------------------------------------------------------------
@prompts_app.command("list")
def prompts_list(as_json: AsJson = False, workspace: Workspace = None) -> None:
    """Every judging prompt version, oldest first; * marks the active one (the one the judge uses).

    Shows each version's parent, who wrote it (human or optimizer), when, the first 12 hex digits of its text's
    sha256 (verdicts cite it), and κ on the validation split when the version was made, if it was measured."""
    store = _store(workspace)
    active = store.active().version
    versions = store.versions()
    if as_json:
        _print_json([{**_header(p), "active": p.version == active} for p in versions])
        return
    table = Table()
    for column in ("", "version", "parent", "created_by", "created_at", "hash", "κ val"):
        table.add_column(column, justify="right" if column in ("version", "parent", "κ val") else "left")
    for p in versions:
        table.add_row("*" if p.version == active else "", f"v{p.version}",
                      NONE if p.parent is None else f"v{p.parent}", p.created_by,
                      f"{p.created_at:%Y-%m-%d %H:%M}", p.hash[:12], _fmt(_kappa(p.metrics)))
    out.print(table)
    out.print(f"active: v{active}", highlight=False)


@prompts_app.command("show")
def prompts_show(
    version: VersionArg,
    raw: Annotated[bool, typer.Option("--raw", help="Print only the prompt text, without the front matter.")] = False,
    workspace: Workspace = None,
) -> None:
    """Front matter and text of VERSION.

    The front matter holds role, version, parent, created_by, created_at, hash, required placeholders and the
    metrics on the validation split when the version was made. With --raw, only the text (the template the judge
    renders)."""
    import yaml

    prompt = _store(workspace).get(_version(version))
    if not raw:
        sys.stdout.write("---\n" + yaml.safe_dump(_header(prompt), sort_keys=False, allow_unicode=True) + "---\n")
    sys.stdout.write(prompt.text if prompt.text.endswith("\n") or raw else prompt.text + "\n")


@prompts_app.command("diff")
def prompts_diff(version_a: VersionArg, version_b: VersionArg, workspace: Workspace = None) -> None:
    """Unified diff of the text of VERSION_A → VERSION_B, then the metric deltas.

    A delta is VERSION_B − VERSION_A for every metric both versions recorded, e.g. `kappa_val +0.061`."""
    store = _store(workspace)
    a, b = store.get(_version(version_a)), store.get(_version(version_b))
    lines_a = a.text.splitlines(keepends=True)
    lines_b = b.text.splitlines(keepends=True)
    diff = list(difflib.unified_diff(lines_a, lines_b, fromfile=f"v{a.version} ({a.hash[:12]})",
                                     tofile=f"v{b.version} ({b.hash[:12]})"))
    if diff:
        sys.stdout.writelines(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                              for line in diff)
    else:
        sys.stdout.write(f"v{a.version} and v{b.version} have the same text\n")
    metrics_a, metrics_b, from_runs = _version_metrics(a, b, _candidates(workspace))
    shown = [(k, _delta(metrics_b[k], metrics_a[k])) for k in metrics_b if k in metrics_a]
    if not shown:
        sys.stdout.write(f"\nmetrics: none recorded for both v{a.version} and v{b.version}\n")
        return
    sys.stdout.write(f"\nmetrics (v{b.version} − v{a.version}):\n")
    for key, delta in shown:
        sys.stdout.write(f"  {key} {delta}\n")
    if from_runs & {k for k, _ in shown}:
        sys.stdout.write("  (metrics a version's front matter lacks come from the optimizer's candidate records)\n")


_GATE_KEYS = {"delta", "ci_low", "ci_high"}


def _side(metrics: dict[str, Any], side: str) -> dict[str, float]:
    """One side of a candidate record's metrics, named as a version's own: side "candidate" (the version it
    became: kappa_val, golden_candidate → golden) or "parent" (kappa_parent_val → kappa_val, golden_parent →
    golden). Gate statistics (delta, interval) belong to neither."""
    found: dict[str, float] = {}
    for key, value in metrics.items():
        number = _number(value)
        if number is None or key in _GATE_KEYS:
            continue
        parts = key.split("_")
        if ("parent" in parts) == (side == "parent"):
            found["_".join(p for p in parts if p not in ("parent", "candidate"))] = number
    return found


def _version_metrics(a: PromptVersion, b: PromptVersion,
                     rows: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float], set[str]]:
    """Metrics of A and of B: each version's front matter first, then what the optimizer measured for it.

    When one version was accepted as a candidate of the other, that record measured both on the same validation
    split, so it is used before any other record. Returns the keys that came from the records."""
    own = [{k: n for k, v in p.metrics.items() if (n := _number(v)) is not None} for p in (a, b)]
    from_runs: set[str] = set()

    def fill(target: dict[str, float], extra: dict[str, float]) -> None:
        for key, value in extra.items():
            if key not in target:
                target[key] = value
                from_runs.add(key)

    accepted = [r for r in rows if r["status"] == "accepted" and r["version"] is not None]
    for new, old in ((1, 0), (0, 1)):
        versions = (a.version, b.version)
        pair = next((r for r in accepted if r["version"] == versions[new] and r["parent"] == versions[old]), None)
        if pair is not None:
            fill(own[new], _side(pair["metrics"], "candidate"))
            fill(own[old], _side(pair["metrics"], "parent"))
    for prompt, target in zip((a, b), own, strict=True):
        made = next((r for r in accepted if r["version"] == prompt.version), None)
        if made is not None:
            fill(target, _side(made["metrics"], "candidate"))
        as_parent = next((r for r in rows if r["parent"] == prompt.version), None)
        if as_parent is not None:
            fill(target, _side(as_parent["metrics"], "parent"))
    return own[0], own[1], from_runs


@prompts_app.command("activate")
def prompts_activate(version: VersionArg, workspace: Workspace = None) -> None:
    """Make VERSION the prompt the judge uses from now on (`rollback` undoes it)."""
    store = _store(workspace)
    before = store.active()
    after = store.activate(_version(version))
    if after.version == before.version:
        out.print(f"v{after.version} is already active ({after.hash[:12]})", highlight=False)
    else:
        out.print(f"active {ROLE} prompt: v{before.version} → v{after.version} ({after.hash[:12]})",
                  highlight=False)


@prompts_app.command("rollback")
def prompts_rollback(workspace: Workspace = None) -> None:
    """Re-activate the version that was active before the current one.

    Walks the activation history back one step; run it again to go further back. Fails (exit code 2) when no
    other version was ever activated."""
    store = _store(workspace)
    before = store.active()
    after = store.rollback()
    out.print(f"rolled back the {ROLE} prompt: v{before.version} → v{after.version} ({after.hash[:12]})",
              highlight=False)


# --- optimizer history -----------------------------------------------------------------------------------------
def _existing_store(workspace: Path | None) -> RunStore | None:
    """The workspace's run store, or None when it has none: reading the history must not create an empty one."""
    from overseer.store.runs import RunStore

    path = _workspace(workspace) / "runs.sqlite"
    return RunStore(path) if path.exists() else None


def _unproductive_rounds(workspace: Path | None) -> list[dict[str, Any]]:
    """Failed and interrupted rounds that left no candidate, with their reason."""
    store = _existing_store(workspace)
    if store is None:
        return []
    try:
        return store.unproductive_rounds()
    finally:
        store.close()


def _candidates(workspace: Path | None) -> list[dict[str, Any]]:
    from overseer.types import scripted_backend

    store = _existing_store(workspace)
    if store is None:
        return []
    try:
        found = store.candidates(ROLE)
    finally:
        store.close()
    rounds: dict[str, int] = {}
    rows = []
    for c in found:
        m = c["metrics"] or {}
        rows.append({
            "round": rounds.setdefault(c["round_id"], len(rounds) + 1), "round_id": c["round_id"], "id": c["id"],
            "parent": c["parent_version"], "version": c["version"] if c["status"] == "accepted" else None,
            "status": c["status"], "kappa_val": _kappa(m), "kappa_parent_val": _kappa(m, "kappa_parent_val"),
            "delta": _number(m.get("delta")), "ci_low": _number(m.get("ci_low")),
            "ci_high": _number(m.get("ci_high")), "kappa_test": _number(m.get("kappa_test")),
            "kappa_parent_test": _number(m.get("kappa_parent_test")), "n_test": _number(m.get("n_test")),
            "reason": c["reason"], "created_at": c["created_at"],
            "synthetic": scripted_backend(m.get("judge_backend"), m.get("reflection_backend")),
            "kind": "candidate", "by_provenance": _by_provenance(m), "metrics": m})
    return rows


def _by_provenance(m: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{split: {provenance: {kappa, kappa_parent, n}}} from the candidate's metrics (optimizer.by_provenance)."""
    from overseer.optimize.pool import PROVENANCES

    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for split in ("val", "test"):
        for p in PROVENANCES:
            if (n := _number(m.get(f"n_{split}_{p}"))) is not None:
                out.setdefault(split, {})[p] = {"kappa": _number(m.get(f"kappa_{split}_{p}")),
                                                "kappa_parent": _number(m.get(f"kappa_parent_{split}_{p}")),
                                                "n": n}
    return out


def _round_rows(unproductive: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed and interrupted rounds as --json rows beside the candidates (no candidate: its fields are null)."""
    return [{"kind": "round", "round_id": r["round_id"], "status": r["status"], "reason": r["reason"],
             "stage": r["stage"], "created_at": r["created_at"], "id": None, "round": None, "parent": None,
             "version": None, "kappa_val": None, "kappa_test": None, "synthetic": None, "by_provenance": {}}
            for r in unproductive]


def _accepted_series(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(label, κ on validation) for the starting version, then each accepted version in order."""
    series: list[tuple[str, float]] = []
    for r in rows:
        if r["status"] != "accepted" or r["kappa_val"] is None:
            continue
        if not series and r["kappa_parent_val"] is not None:
            series.append((f"v{r['parent']}", r["kappa_parent_val"]))
        series.append((f"v{r['version']}" if r["version"] is not None else "?", r["kappa_val"]))
    return series


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return SPARK[len(SPARK) // 2] * len(values)
    return "".join(SPARK[round((v - low) / (high - low) * (len(SPARK) - 1))] for v in values)


def _interval(r: dict[str, Any]) -> str:
    if r["delta"] is None:
        return NONE
    ci = f" [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]" if r["ci_low"] is not None and r["ci_high"] is not None \
        else ""
    return f"{r['delta']:+.3f}{ci}"


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = Table()
    for column in ("round", "parent → version", "status", "κ val (selection)", "κ val parent", "Δκ (interval)",
                   "κ test (unbiased; parent)", "κ val by label source", "reason"):
        table.add_column(column)
    for r in rows:
        step = f"v{r['parent']} → " + (NONE if r["version"] is None else f"v{r['version']}")
        status = Text(r["status"], style="green" if r["status"] == "accepted" else "red")
        table.add_row(str(r["round"]), step, status, _fmt(r["kappa_val"]), _fmt(r["kappa_parent_val"]),
                      Text(_interval(r)), _test_kappa(r), Text(_provenance_cell(r)), Text(r["reason"] or ""))
    out.print(table)


def _provenance_cell(r: dict[str, Any]) -> str:
    """e.g. `human 0.812 (n=12); reference 0.604 (n=40)`: κ of the candidate on each label source."""
    parts = [f"{p} {_fmt(v['kappa'])} (n={v['n']:.0f})" for p, v in r["by_provenance"].get("val", {}).items()]
    return "; ".join(parts) or NONE


def _test_kappa(r: dict[str, Any]) -> str:
    if r["kappa_test"] is None:
        return NONE
    return f"{r['kappa_test']:.3f}; {_fmt(r['kappa_parent_test'])} (n={r['n_test']:.0f})"


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(rows) + 3), 4))
    try:
        # candidates are x = 1..n; the version the first accepted one improved on is x = 0
        accepted: list[tuple[int, float, str]] = []
        first_accepted = next((r for r in rows if r["status"] == "accepted" and r["kappa_val"] is not None), None)
        if first_accepted is not None and first_accepted["kappa_parent_val"] is not None:
            accepted = [(0, first_accepted["kappa_parent_val"], f"v{first_accepted['parent']}")]
        rejected: list[tuple[int, float]] = []
        unmeasured = 0
        for i, r in enumerate(rows, start=1):
            if r["kappa_val"] is None:
                unmeasured += 1
            elif r["status"] == "accepted":
                accepted.append((i, r["kappa_val"], f"v{r['version']}" if r["version"] is not None else "?"))
            else:
                rejected.append((i, r["kappa_val"]))
        if accepted:
            ax.plot([x for x, _, _ in accepted], [y for _, y, _ in accepted], "-o", color="tab:blue",
                    markersize=8, label="accepted")
            for x, y, label in accepted:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
        if rejected:
            ax.scatter([x for x, _ in rejected], [y for _, y in rejected], s=64, facecolors="none",
                       edgecolors="tab:red", linewidths=1.5, label="rejected", zorder=3)
        if unmeasured:
            ax.plot([], [], " ", label=f"{unmeasured} not measured on validation (not plotted)")
        ax.set_xlabel("candidate (0 = starting version)")
        ax.set_ylabel("κ on validation")
        ax.set_title(f"{ROLE} prompt optimizer: κ on validation per candidate")
        ax.set_xticks(range(0, len(rows) + 1))
        ax.grid(alpha=0.3)
        ax.margins(x=0.05, y=0.15)  # room for the version labels above the points
        ax.legend(loc="best")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=120)
    finally:
        plt.close(fig)


@prompts_app.command("history")
def prompts_history(
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also write a PNG: κ on validation per "  # noqa: UP045
                                                 "candidate, accepted versions as filled markers on a line, "
                                                 "rejected candidates as hollow markers.",
                                                 metavar="FILE.png", show_default=False)] = None,
    as_json: AsJson = False,
    workspace: Workspace = None,
) -> None:
    """Every candidate prompt the optimizer tried, accepted or rejected, with κ on validation.

    One row per candidate, in order: round, parent → new version (— when rejected), status, κ on validation of
    the candidate and of its parent (used for selection, so an accepted version's is inflated by it), the gain
    Δκ with its bootstrap interval, κ on the held-out test split (measured only after an acceptance, never used
    to decide: the unbiased figure, with the parent's beside it), κ on validation per label source (human review,
    reference column, seed file), and why a rejected candidate was rejected. Rounds that failed or were
    interrupted before proposing a candidate follow, with their reason (--json: rows of kind `round`).
    Then a sparkline of κ on validation of the starting version and each accepted version."""
    if plot is not None and plot.suffix.lower() != ".png":
        raise OverseerError(f"--plot writes a PNG: give a file name ending in .png, not {plot}")
    rows, unproductive = _candidates(workspace), _unproductive_rounds(workspace)
    if as_json:
        _print_json(sorted([*rows, *_round_rows(unproductive)], key=lambda r: r["created_at"]))
    elif not rows and not unproductive:
        out.print("no optimizer history yet: no candidate prompt was ever proposed in this workspace "
                  "(run `overseer improve`)", highlight=False)
    else:
        if rows:
            _print_table(rows)
        series = _accepted_series(rows)
        if series:
            out.print(f"κ on validation by version: {sparkline([k for _, k in series])}  "
                      + " → ".join(f"{label} {k:.3f}" for label, k in series), highlight=False)
        else:
            out.print("κ on validation by version: no candidate accepted yet", highlight=False)
        for r in unproductive:
            out.print(f"round {r['round_id']} ({r['created_at'][:16]}): {r['status']} — {r['reason']}",
                      highlight=False)
        if synthetic := sum(r["synthetic"] for r in rows):
            from overseer.providers.scripted import synthetic_note

            note = synthetic_note(f"{synthetic} of these candidates were judged or proposed")
            out.print(f"[yellow]{note}[/]")
    if plot is not None:
        if not rows:
            err.print("nothing to plot: no candidate yet")
            return
        _plot(plot, rows)
        err.print(f"wrote {plot}", highlight=False)
