"""The backend options are one set: the same four on every command that calls a model, with the same help, and
they reach the settings each command builds its judges from."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from cli_helpers import cli

from overseer.cli.main import app
from overseer.config import Settings
from overseer.errors import OverseerError

BACKEND_OPTIONS = ("--backend", "--model", "--base-url", "--judges")
MODEL_COMMANDS = ("judge", "improve", "review", "audit")


def test_every_command_that_calls_a_model_has_the_same_backend_options() -> None:
    group = typer.main.get_command(app)
    helps: dict[str, set[str]] = {name: set() for name in BACKEND_OPTIONS}
    for command in MODEL_COMMANDS:
        params = {opt: p for p in group.commands[command].params for opt in p.opts}  # type: ignore[attr-defined]
        for name in BACKEND_OPTIONS:
            assert name in params, f"{command} lacks {name}"
            helps[name].add(params[name].help)
    assert all(len(texts) == 1 for texts in helps.values()), helps


class Captured(OverseerError):
    pass


def test_improve_passes_base_url_and_judges_to_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    def capture(settings: Settings, _store: object) -> list[object]:
        seen.append(settings)
        raise Captured("captured")

    monkeypatch.setattr("overseer.optimize.learner.all_examples", capture)
    code, text = cli("improve", "--judges", "openai@judge-model", "--base-url", "http://127.0.0.1:9/v1",
                     "-w", str(tmp_path / "ws"))
    assert code == 2 and "captured" in text, text
    assert (seen[0].judges, seen[0].base_url) == (["openai@judge-model"], "http://127.0.0.1:9/v1")


# improve and review now take several judges (issue 13 item 5: a rewrite is validated with every judge that will
# serve it); audit still audits one.
@pytest.mark.parametrize("command", ["audit"])
def test_a_single_judge_command_refuses_several_judges(command: str, tmp_path: Path) -> None:
    args = [command] + (["in.jsonl"] if command == "audit" else [])
    code, text = cli(*args, "--judges", "scripted:echo openai@gpt-4o", "-w", str(tmp_path / "ws"))
    assert code == 2 and f"{command} works on one judge; --judges names 2" in text and "Traceback" not in text


LEARNING_OPTIONS = ("--reflection-backend", "--labels")
LEARNING_COMMANDS = ("judge", "improve", "review")  # the three paths that run improvement rounds


def test_the_learning_options_are_one_set_on_every_path_that_learns() -> None:
    group = typer.main.get_command(app)
    for name in LEARNING_OPTIONS:
        helps = set()
        for command in LEARNING_COMMANDS:
            params = {opt: p for p in group.commands[command].params for opt in p.opts}  # type: ignore[attr-defined]
            assert name in params, f"{command} lacks {name}"
            helps.add(params[name].help)
        assert len(helps) == 1, (name, helps)


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_model_commands_help_lists_the_backend_options_in_one_panel(command: str) -> None:
    code, text = cli(command, "--help")
    assert code == 0, text
    panel = text[text.index("Model backend"):]
    for name in BACKEND_OPTIONS:
        assert name in panel, f"{command} --help: {name} not in the Model backend panel"


def test_improve_takes_every_judge_that_will_serve_the_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    def capture(settings: Settings, _store: object) -> list[object]:
        seen.append(settings)
        raise Captured("captured")

    monkeypatch.setattr("overseer.optimize.learner.all_examples", capture)
    code, text = cli("improve", "--judges", "scripted:rules openai@gpt-4o", "-w", str(tmp_path / "ws"))
    assert code == 2 and "captured" in text, text
    assert seen[0].judges == ["scripted:rules", "openai@gpt-4o"]
