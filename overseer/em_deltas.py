"""`overseer report --control GROUP`: treated-minus-control EM rates, per convention, with intervals.

GROUP names the control by values of `--by` fields: `FIELD=VALUE[,FIELD=VALUE...]` (e.g. `--by model --control
model=base`), or a bare VALUE when `--by` names one field. Every other group is compared with the control group
that has the control values and the same values of the remaining `--by` fields: with `--by model,question_id
--control model=base`, each model's answers to a question are compared with the base model's answers to it.

The interval is metrics.rate_difference's: a cluster bootstrap by question, paired where both sides answered the
same question (the usual design: every model gets the same questions) — or, without question ids, the same sample
(e.g. `--by judge --control judge=ID`: two judges on one set of answers) — at least Newcombe's interval."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from overseer import em, metrics
from overseer.errors import ConfigError

if TYPE_CHECKING:
    from overseer.em_groups import Answer

Key = tuple[str, ...]
Clusters = Callable[[Sequence["Answer"]], "list[str] | None"]  # each answer's pairing unit (question or sample)
DELTA_RATES: tuple[str, ...] = ("betley", "all", "emergent")


def parse_control(control: str, by: Sequence[str]) -> dict[str, str]:
    """`model=base` → {"model": "base"}; a bare value when --by has one field. One-line errors for the rest."""
    if not by:
        raise ConfigError(f"--control {control}: name the field that tells treated from control with --by, "
                          "e.g. --by model --control model=base")
    if "=" not in control:
        if len(by) != 1:
            raise ConfigError(f"--control {control}: with --by {','.join(by)} say which field, e.g. "
                              f"--control {by[0]}={control}")
        return {by[0]: control}
    named: dict[str, str] = {}
    for part in control.split(","):
        field, sep, value = part.partition("=")
        field = field.strip()
        if not sep or not field:
            raise ConfigError(f"--control {control}: expected FIELD=VALUE[,FIELD=VALUE...], got {part!r}")
        if field not in by:
            raise ConfigError(f"--control {control}: {field!r} is not one of the --by fields ({', '.join(by)})")
        named[field] = value.strip()
    return named


def deltas(parts: Mapping[Key, Sequence[Answer]], by: Sequence[str], control: Mapping[str, str],
           clusters_of: Clusters) -> list[dict[str, Any]]:
    """One entry per treated group: its key, its control's key and, per rate, metrics.Difference.as_dict().
    `clusters_of(answers)` gives each answer's question (or None when the input has no question ids)."""
    position = {f: by.index(f) for f in control}
    controls = {k: v for k, v in parts.items() if all(k[i] == control[f] for f, i in position.items())}
    if not controls:
        seen = sorted({"=".join((f, k[i])) for k in parts for f, i in position.items()})
        raise ConfigError(f"--control {','.join(f'{f}={v}' for f, v in control.items())}: no group has it "
                          f"(groups: {', '.join(seen[:20])}{' ...' if len(seen) > 20 else ''})")
    rest = [i for i, f in enumerate(by) if f not in control]
    by_rest = {tuple(k[i] for i in rest): k for k in controls}
    out = []
    for key, treated in sorted(parts.items()):
        if key in controls:
            continue
        match = by_rest.get(tuple(key[i] for i in rest))
        entry: dict[str, Any] = {"key": dict(zip(by, key, strict=True)),
                                 "control": None if match is None else dict(zip(by, match, strict=True))}
        if match is None:
            entry["undefined"] = "no control group with the same " + ", ".join(
                f"{by[i]}={key[i]}" for i in rest)
            entry["em"] = {name: None for name in DELTA_RATES}
        else:
            entry["undefined"] = None
            entry["em"] = {name: difference(treated, parts[match], name, clusters_of).as_dict()
                           for name in DELTA_RATES}
        out.append(entry)
    return out


def difference(treated: Sequence[Answer], control: Sequence[Answer], rate: str, clusters_of: Clusters) \
        -> metrics.Difference:
    """One rate's difference. `emergent` is the Betley denominator's emergent-only rate, as in em.em_rates;
    unknown (undefined) when no answer on either side has a generalization level."""
    if rate == "emergent" and not any(a.judged.generalization is not None for a in (*treated, *control)):
        empty = metrics.rate_interval([])
        return metrics.Difference(empty, empty, None, None, None, "none", 0,
                                  "no answer has a generalization level (e.g. the Betley rubric gives none)")
    sides = [_flags(answers, rate, clusters_of(answers)) for answers in (treated, control)]
    (t_flags, t_keys), (c_flags, c_keys) = sides
    return metrics.rate_difference(t_flags, c_flags, t_keys, c_keys)


def _flags(answers: Sequence[Answer], rate: str, clusters: Sequence[str] | None) \
        -> tuple[list[bool], list[str] | None]:
    """The answers in the rate's denominator, each with its flag (misaligned, or emergent) and question."""
    convention: em.Convention = "all" if rate == "all" else "betley"
    flags, keys = [], []
    for i, answer in enumerate(answers):
        decision = em.decide(answer.judged)
        flag = decision.emergent if rate == "emergent" else decision.misaligned
        if decision.counts(convention) and flag is not None:
            flags.append(flag)
            keys.append(clusters[i] if clusters is not None else "")
    return flags, (keys if clusters is not None else None)
