"""Settings: command-line flags > environment (OVERSEER_*, ANTHROPIC_API_KEY, OPENAI_*) > WORKSPACE/config.toml."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from overseer.errors import ConfigError

DEFAULT_WORKSPACE = Path(".overseer")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERSEER_", extra="forbid", populate_by_name=True)

    workspace: Path = Field(DEFAULT_WORKSPACE, validation_alias=AliasChoices("workspace", "OVERSEER_HOME",
                                                                             "OVERSEER_WORKSPACE"))
    backend: str | None = None  # anthropic | openai | local | scripted:RULE; None = auto
    model: str | None = None
    base_url: str | None = Field(None, validation_alias=AliasChoices("base_url", "OVERSEER_BASE_URL",
                                                                     "OPENAI_BASE_URL"))
    anthropic_api_key: str | None = Field(None, validation_alias=AliasChoices("anthropic_api_key",
                                                                              "ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(None, validation_alias=AliasChoices("anthropic_base_url",
                                                                               "ANTHROPIC_BASE_URL"))
    openai_api_key: str | None = Field(None, validation_alias=AliasChoices("openai_api_key", "OPENAI_API_KEY"))
    judges: list[str] = Field(default_factory=list)  # several backend specs; empty = one judge from backend/model
    rubric: Literal["spec", "betley"] = "spec"
    concurrency: int = Field(8, ge=1, le=1024)
    timeout_s: float = Field(120.0, gt=0)
    max_attempts: int = Field(6, ge=1, le=20)
    max_clauses: int = Field(16, ge=1, le=200)  # clauses shown per sample when the spec is larger than this
    temperature: float = 0.0
    max_tokens: int = Field(1024, ge=16)
    # Characters of a response the judge sees (head and tail; the verdict records the cut). None = sized to the
    # judge model's context window (Judge.response_budget).
    max_response_chars: int | None = Field(None, ge=200)
    cache: bool = True
    low_confidence: float = Field(0.6, ge=0, le=1)  # below this → review
    threshold_margin: float = Field(5.0, ge=0)  # Betley score this close to 30 / 50 → review
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    reflection_backend: str | None = None  # the model that rewrites prompts; None = the judge's backend
    learn_every: int = Field(20, ge=2)  # with --learn: one improvement round per this many new labels
    improve_delta: float = Field(0.02, ge=0)  # minimum κ gain on validation to accept a rewrite
    improve_minibatch: int = Field(12, ge=2)
    # Which labels the optimizer learns from and is gated on: human (reviews only) or all (reviews, reference
    # columns, seed files); see overseer.optimize.pool.DEFAULT_LABELS for why `all` is the default.
    improve_labels: Literal["human", "all"] = "all"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _WorkspaceFileSource(settings_cls)


class _WorkspaceFileSource(PydanticBaseSettingsSource):
    """Lowest priority: config.toml in the workspace chosen by flag or environment."""

    pending_path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = type(self).pending_path
        if path is None or not path.is_file():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def load_settings(**flags: Any) -> Settings:
    """Build settings; flags that are None are treated as not given."""
    given = {k: v for k, v in flags.items() if v is not None and v != []}
    workspace = Path(given.get("workspace") or os.environ.get("OVERSEER_HOME")
                     or os.environ.get("OVERSEER_WORKSPACE") or DEFAULT_WORKSPACE)
    _WorkspaceFileSource.pending_path = workspace / "config.toml"
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings ({problems})") from exc
    except SettingsError as exc:  # e.g. OVERSEER_JUDGES that is not a JSON list; the message names the field
        raise ConfigError(f"invalid settings ({exc})") from exc
    finally:
        _WorkspaceFileSource.pending_path = None
