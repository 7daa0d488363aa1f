"""The cascade threshold, calibrated on the user's own memory: `overseer memory calibrate` cross-validates the fast
judge on the reviewed cases, picks the lowest TAU at which the cases it would decide agree with their human labels
at least as often as the target, and stores it in WORKSPACE/memory/cascade.json for `judge --cascade auto`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overseer.errors import ConfigError, OverseerError
from overseer.memory.fast_judge import cascade_table, cross_validated, featurize
from overseer.memory.store import EdgeCaseStore

FILE = "cascade.json"
DEFAULT_TARGET = 0.95
# A TAU is only chosen where the memory decides at least this many held-out cases: an agreement measured on a
# handful of decisions (e.g. 3 of 3) is noise, not an estimate.
MIN_DECISIONS = 20
TAUS = sorted({*(round(float(t), 2) for t in np.arange(0.5, 1.0, 0.01)), 0.995, 0.999})


@dataclass
class Calibration:
    tau: float | None  # None: no TAU reached the target on enough decisions
    target: float
    estimated_agreement: float | None  # out-of-fold agreement of the memory's own decisions at `tau`
    decided_share: float  # share of the reviewed cases it decided at `tau`
    n: int
    folds: int
    memory_version: str
    rows: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (no decisions at a TAU) becomes null."""
        rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in self.rows]
        return {**asdict(self), "rows": rows}

    def estimate_at(self, tau: float) -> dict[str, float] | None:
        """The cross-validated row for a TAU given by hand: the highest calibrated TAU not above it (conservative:
        a higher TAU decides a subset of those cases)."""
        below = [r for r in self.rows if r["tau"] <= tau + 1e-9 and r["decided"] >= MIN_DECISIONS]
        return max(below, key=lambda r: r["tau"]) if below else None


def check_arguments(target: float, taus: list[float] | None) -> None:
    """Refuse a target or TAU calibration cannot use (before anything is read)."""
    if not 0.5 < target < 1.0:
        raise ConfigError(f"--target is an agreement between 0.5 and 1 (exclusive), not {target}")
    for tau in taus or []:  # the range `judge --cascade TAU` accepts: a TAU it refuses must not be stored
        if not 0.5 <= tau <= 1.0:
            raise ConfigError(f"--tau is a confidence between 0.5 and 1, not {tau}")


def calibrate(store: EdgeCaseStore, *, target: float = DEFAULT_TARGET, folds: int = 5,
              taus: list[float] | None = None) -> Calibration:
    check_arguments(target, taus)
    _, prompts, responses, labels = store.labelled_cases(reviewed_only=True)
    counts = {label: labels.count(label) for label in set(labels)}
    if len(counts) < 2 or min(counts.values()) < folds:
        raise OverseerError(f"calibration needs at least {folds} reviewed cases of each of two labels; the memory "
                            f"has {counts}")
    predictions = cross_validated(featurize(store.embedder.embed, prompts, responses), labels, folds=folds)
    rows = cascade_table(predictions, labels, sorted({*TAUS, *(taus or [])}))
    chosen = next((r for r in rows if r["decided"] >= MIN_DECISIONS and r["memory_accuracy"] >= target), None)
    return Calibration(tau=chosen["tau"] if chosen else None, target=target,
                       estimated_agreement=chosen["memory_accuracy"] if chosen else None,
                       decided_share=chosen["saved"] if chosen else 0.0, n=len(labels), folds=folds,
                       memory_version=store.version, rows=rows)


def save(root: Path, calibration: Calibration) -> Path:
    path = root / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(calibration.as_dict(), indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: `judge --cascade auto` never reads half a file
    return path


def load(root: Path) -> Calibration | None:
    path = root / FILE
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        rows = [{k: (float("nan") if v is None else v) for k, v in r.items()} for r in data.pop("rows", [])]
        return Calibration(**data, rows=rows)
    except (ValueError, TypeError) as exc:
        raise OverseerError(f"{path} is unreadable ({exc}); recreate it with `overseer memory calibrate`") from exc


def auto_tau(root: Path) -> Calibration:
    """The calibration `--cascade auto` uses, or a clear error saying how to get one."""
    calibration = load(root)
    if calibration is None:
        raise ConfigError(f"--cascade auto needs a calibrated memory: run `overseer memory calibrate` first "
                          f"(nothing in {root / FILE})")
    if calibration.tau is None:
        raise ConfigError(f"`overseer memory calibrate` found no TAU at which the memory reaches agreement "
                          f"{calibration.target} on at least {MIN_DECISIONS} held-out cases; calibrate with a lower "
                          "--target, review more cases, or give --cascade TAU yourself")
    return calibration
