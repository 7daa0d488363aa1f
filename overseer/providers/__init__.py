"""Backends behind one protocol. Each backend lives in its own module and imports its SDK lazily."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from overseer.config import Settings
from overseer.errors import ConfigError
from overseer.providers.base import CallContext, Completion, GenerationParams, Provider

if TYPE_CHECKING:
    from overseer.providers.scripted import Script

__all__ = ["CallContext", "Completion", "GenerationParams", "Provider", "choose_backend", "is_scripted",
           "make_provider"]

LOCAL_NOTICE = ("overseer: no ANTHROPIC_API_KEY / OPENAI_API_KEY / OPENAI_BASE_URL set, using the embedded "
                "SmolLM2-135M model; it proves the pipeline runs offline, its verdicts are not trustworthy.")


def choose_backend(settings: Settings) -> str:
    """Flag/config first, else the first backend whose credentials are present, else the local model."""
    if settings.backend:
        return settings.backend
    if settings.anthropic_api_key:
        return "anthropic"
    if settings.openai_api_key or settings.base_url:
        return "openai"
    print(LOCAL_NOTICE, file=sys.stderr)
    return "local"


def is_scripted(backend_spec: str) -> bool:
    return backend_spec.partition("@")[0].partition(":")[0] == "scripted"


def make_provider(backend_spec: str, settings: Settings, script: Script | None = None) -> Provider:
    """`anthropic`, `openai`, `local`, or `scripted:RULE,...`; `backend@model` overrides the model. `script`
    (labels and metadata of the samples about to be judged) goes to the scripted backend only."""
    spec, _, model_override = backend_spec.partition("@")
    name, _, options = spec.partition(":")
    model = model_override or settings.model
    if name == "scripted":
        from overseer.providers.scripted import ScriptedProvider

        return ScriptedProvider.from_spec(options or "echo", model=model_override or None, script=script)
    if name == "anthropic":
        from overseer.providers.anthropic import AnthropicProvider

        return AnthropicProvider(model=model, api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url,
                                 timeout=settings.timeout_s)
    if name == "openai":
        from overseer.providers.openai import OFFICIAL_URL, OpenAIProvider, served_model

        if not model and settings.base_url and settings.base_url.rstrip("/") != OFFICIAL_URL:
            model = served_model(settings.base_url, settings.openai_api_key, settings.timeout_s)
        return OpenAIProvider(model=model, api_key=settings.openai_api_key, base_url=settings.base_url,
                              timeout=settings.timeout_s)
    if name == "local":
        from overseer.providers.local import LocalProvider

        # --model names a .gguf file here; a hosted model's name (say from OVERSEER_MODEL) is not one.
        path = model if model and model.endswith(".gguf") else None
        return LocalProvider(model_path=path)
    raise ConfigError(f"unknown backend {name!r}: use anthropic, openai, local or scripted:RULE")

