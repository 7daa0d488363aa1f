"""overseer.config.load_settings: flags > environment > WORKSPACE/config.toml; bad values name the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overseer.config import load_settings
from overseer.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No OVERSEER_*/provider variables from the developer's shell, and no ./.overseer from the checkout."""
    for name in list(os.environ):
        if name.startswith(("OVERSEER_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "config.toml").write_text(
        'model = "file-model"\nconcurrency = 3\nbase_url = "http://file:8000/v1"\n'
        'judges = ["scripted:echo", "scripted:flip=0.1"]\n\n[prices]\nfile-model = [1.0, 2.0]\n',
        encoding="utf-8")
    return ws


def test_config_file_is_read_from_the_workspace_given_by_flag(workspace: Path):
    settings = load_settings(workspace=workspace)
    assert settings.workspace == workspace
    assert (settings.model, settings.concurrency, settings.base_url) == ("file-model", 3, "http://file:8000/v1")
    assert settings.judges == ["scripted:echo", "scripted:flip=0.1"]
    assert settings.prices == {"file-model": (1.0, 2.0)}


def test_environment_beats_the_config_file(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OVERSEER_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:9000/v1")
    settings = load_settings(workspace=workspace)
    assert (settings.model, settings.base_url) == ("env-model", "http://env:9000/v1")
    assert settings.concurrency == 3  # not set in the environment: still from the file


def test_flags_beat_the_environment(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OVERSEER_MODEL", "env-model")
    monkeypatch.setenv("OVERSEER_CONCURRENCY", "5")
    settings = load_settings(workspace=workspace, model="flag-model", concurrency=None, judges=[])
    assert settings.model == "flag-model"
    assert settings.concurrency == 5  # a None flag counts as not given
    assert settings.judges == ["scripted:echo", "scripted:flip=0.1"]  # so does an empty list


@pytest.mark.parametrize("variable", ["OVERSEER_HOME", "OVERSEER_WORKSPACE"])
def test_workspace_from_the_environment_finds_its_config_file(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                               variable: str):
    monkeypatch.setenv(variable, str(workspace))
    settings = load_settings()
    assert settings.workspace == workspace
    assert settings.model == "file-model"


def test_defaults_without_file_environment_or_flags(tmp_path: Path):
    settings = load_settings(workspace=tmp_path / "empty")
    assert settings.model is None and settings.concurrency == 8 and settings.judges == []


def test_api_keys_come_from_their_usual_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = load_settings(workspace=tmp_path)
    assert (settings.anthropic_api_key, settings.openai_api_key) == ("sk-ant-test", "sk-test")


def test_invalid_flag_value_is_a_config_error_naming_the_field(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"invalid settings \(concurrency:"):
        load_settings(workspace=tmp_path, concurrency=0)


def test_invalid_environment_value_is_a_config_error_naming_the_field(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OVERSEER_MAX_ATTEMPTS", "lots")
    with pytest.raises(ConfigError, match="max_attempts"):
        load_settings(workspace=tmp_path)


@pytest.mark.parametrize("line, field", [('rubric = "vibes"', "rubric"), ("low_confidence = 2", "low_confidence"),
                                         ('concurency = 4', "concurency")])
def test_invalid_config_file_value_is_a_config_error_naming_the_field(tmp_path: Path, line: str, field: str):
    (tmp_path / "config.toml").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=field):
        load_settings(workspace=tmp_path)


def test_malformed_config_file_is_a_config_error_naming_the_file(tmp_path: Path):
    (tmp_path / "config.toml").write_text("model = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config.toml"):
        load_settings(workspace=tmp_path)


def test_non_json_list_in_the_environment_is_a_config_error_naming_the_field(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OVERSEER_JUDGES", "scripted:echo")
    with pytest.raises(ConfigError, match="judges"):
        load_settings(workspace=tmp_path)
