"""A run's recorded settings: its inputs (each with its sha256), its judges (backend, model, base URL), its spec
(path and hash), rubric and prompt version. They are written into the run's `config` when it starts, and a resume
reuses them: bare `--resume` judges with what the run was judged with, and a flag that contradicts them is refused
with what differs — one run never holds two judges, two specs, two rubrics or two prompts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overseer.config import Settings
from overseer.errors import RunError
from overseer.prompt_store import PromptStore
from overseer.spec import load_spec
from overseer.types import PromptVersion, Spec

if TYPE_CHECKING:
    from overseer.judging.judge import Judge

FORMAT = 2  # runs recorded before this have no `format` and resume with the flags given (see `legacy`)


def file_sha256(path: Path) -> str:
    if path.is_dir():  # a directory of Inspect logs
        from overseer.inspect_logs import input_sha256

        return input_sha256(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_record(path: Path) -> dict[str, str]:
    return {"path": str(path.resolve()), "sha256": file_sha256(path)}


def judge_records(backends: list[str], judges: dict[str, Judge]) -> list[dict[str, Any]]:
    """`backends[i]` built `judges`' i-th judge (build_judges keeps the order)."""
    return [{"spec": spec, "id": judge_id, "backend": judge.provider.backend, "model": judge.provider.model,
             "base_url": judge.provider.base_url}
            for spec, (judge_id, judge) in zip(backends, judges.items(), strict=True)]


def record(*, inputs: list[dict[str, str]], fields: dict[str, Any], limit: int | None, settings: Settings,
           backends: list[str], judges: dict[str, Judge], spec: Spec, prompt: PromptVersion,
           learn: bool) -> dict[str, Any]:
    """The config a new run stores. `settings` is the resolved settings, so env and config.toml are captured too."""
    return {"format": FORMAT, "inputs": inputs, "fields": fields, "limit": limit,
            "judges": judge_records(backends, judges),
            "model": settings.model, "base_url": settings.base_url, "anthropic_base_url": settings.anthropic_base_url,
            "spec": {"path": spec.source, "sha256": spec.hash},
            "rubric": settings.rubric,
            "prompt": {"role": prompt.role, "version": prompt.version, "sha256": prompt.hash},
            "max_clauses": settings.max_clauses, "temperature": settings.temperature,
            "max_tokens": settings.max_tokens, "learn": learn}


def legacy(config: dict[str, Any]) -> bool:
    return config.get("format") != FORMAT


def recorded_inputs(config: dict[str, Any], input_path: str | None, input_sha256: str | None) -> list[dict[str, Any]]:
    if not legacy(config):
        return list(config["inputs"])
    return [{"path": input_path, "sha256": config.get("input_sha256") or input_sha256}]


def _differences(config: dict[str, Any], flags: dict[str, Any], spec_arg: str | None, learn: bool) -> list[str]:
    judges = config["judges"]
    specs = [j["spec"] for j in judges]
    shown = " ".join(f"{j['spec']} (model {j['model']}" + (f", {j['base_url']})" if j["base_url"] else ")")
                     for j in judges)
    diffs = []
    if "judges" in flags and list(flags["judges"]) != specs:
        diffs.append(f"--judges {' '.join(flags['judges'])!r}, but the run's judges are {shown}")
    if "backend" in flags and [flags["backend"]] != specs:
        diffs.append(f"--backend {flags['backend']}, but the run was judged by {shown}")
    if "model" in flags and any(j["model"] != flags["model"] for j in judges):
        diffs.append(f"--model {flags['model']}, but the run was judged by {shown}")
    if "base_url" in flags:
        wanted = str(flags["base_url"]).rstrip("/")
        if not any(j["backend"] == "openai" and (j["base_url"] or "").rstrip("/") == wanted for j in judges):
            diffs.append(f"--base-url {flags['base_url']}, but the run was judged by {shown}")
    if "rubric" in flags and flags["rubric"] != config["rubric"]:
        diffs.append(f"--rubric {flags['rubric']}, but the run used --rubric {config['rubric']}")
    if spec_arg is not None:
        asked = load_spec(spec_arg)
        if asked.hash != config["spec"]["sha256"]:
            diffs.append(f"--spec {spec_arg} (sha256 {asked.hash[:12]}), but the run used {config['spec']['path']} "
                         f"(sha256 {config['spec']['sha256'][:12]})")
    if learn and not config.get("learn"):
        diffs.append("--learn, but the run was started without it")
    return diffs


def resume_settings(run_id: str, config: dict[str, Any], settings: Settings, flags: dict[str, Any],
                    spec_arg: str | None, learn: bool) -> tuple[Settings, Spec, PromptVersion | None, bool]:
    """The settings, spec and prompt to resume `run_id` with: the recorded ones. Returns (settings, spec, prompt,
    learn); prompt None means the workspace's active prompt (a --learn run's prompt evolves by design)."""
    if diffs := _differences(config, flags, spec_arg, learn):
        raise RunError(f"run {run_id} was judged with other settings, and resuming would mix them in one run: "
                       + "; ".join(diffs) + ". Resume without those flags (the run's recorded settings are "
                       "reused), or start a new run without --resume")
    spec = load_spec(config["spec"]["path"])
    if spec.hash != config["spec"]["sha256"]:
        raise RunError(f"{config['spec']['path']} changed since run {run_id} started (sha256 "
                       f"{config['spec']['sha256'][:12]} then, {spec.hash[:12]} now); restore it to resume, or "
                       "start a new run")
    resumed = settings.model_copy(update={
        "backend": None, "judges": [j["spec"] for j in config["judges"]], "model": config["model"],
        "base_url": config["base_url"], "anthropic_base_url": config["anthropic_base_url"],
        "rubric": config["rubric"], "max_clauses": config["max_clauses"], "temperature": config["temperature"],
        "max_tokens": config["max_tokens"]})
    return resumed, spec, _recorded_prompt(run_id, config, settings.workspace), bool(config.get("learn"))


def _recorded_prompt(run_id: str, config: dict[str, Any], workspace: Path) -> PromptVersion | None:
    wanted = config["prompt"]
    if config["rubric"] == "betley":
        from overseer.judging.betley import betley_prompt

        prompt = betley_prompt()
        if prompt.hash != wanted["sha256"]:
            raise RunError(f"run {run_id} was judged with another version of the Betley prompts (sha256 "
                           f"{wanted['sha256'][:12]}, this overseer ships {prompt.hash[:12]}); start a new run")
        return prompt
    if config.get("learn"):
        return None
    store = PromptStore(workspace)
    found = store.find(wanted["sha256"])
    if found is None:
        raise RunError(f"run {run_id} was judged with {wanted['role']} prompt v{wanted['version']} (sha256 "
                       f"{wanted['sha256'][:12]}), which is no longer in {store.dir}; restore it to resume, or "
                       "start a new run")
    return found


def check_judges(run_id: str, config: dict[str, Any], judges: dict[str, Judge]) -> None:
    """The judges rebuilt for a resume are the recorded ones (a self-hosted server may now serve another model)."""
    rebuilt = [(j["backend"], j["model"], j["base_url"]) for j in judge_records(config_specs(config), judges)]
    recorded = [(j["backend"], j["model"], j["base_url"]) for j in config["judges"]]
    if rebuilt != recorded:
        raise RunError(f"run {run_id} was judged by {recorded}, but resuming it now would judge with {rebuilt} "
                       "(did the server's model change?); start a new run")


def config_specs(config: dict[str, Any]) -> list[str]:
    return [j["spec"] for j in config["judges"]]


def judges_shown(config: dict[str, Any]) -> str:
    """The run's judges for `runs show`: `backend@model (base URL)` each; older runs recorded backend specs."""
    judges = config.get("judges") or [config.get("backend") or "auto"]
    return " ".join(j if isinstance(j, str) else j["id"] + (f" ({j['base_url']})" if j["base_url"] else "")
                    for j in judges)


def spec_path(config: dict[str, Any]) -> str | None:
    """The spec a run was judged against, for load_spec; older runs recorded the --spec argument."""
    spec = config.get("spec")
    return spec["path"] if isinstance(spec, dict) else spec
