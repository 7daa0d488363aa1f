"""Dollars per million tokens (input, output). Approximate list prices; override with OVERSEER_PRICES or the
`prices` table in the workspace config, e.g. {"my-model": [0.5, 1.5]}."""

from __future__ import annotations

from overseer.types import Usage

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-haiku-4": (1.0, 5.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.0),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.0, 8.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5": (1.25, 10.0),
}


def cost_usd(model: str, usage: Usage, overrides: dict[str, tuple[float, float]] | None = None) -> float:
    """Price by the longest matching model-name prefix; unknown models (local, self-hosted) cost 0."""
    table = {**PRICES_PER_MTOK, **(overrides or {})}
    matches = [name for name in table if model.startswith(name)]
    if not matches:
        return 0.0
    price_in, price_out = table[max(matches, key=len)]
    return (usage.input_tokens * price_in + usage.output_tokens * price_out) / 1_000_000
