"""Cost of a call from the `pricing` table of promptyard.yaml (USD per million tokens)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from promptyard.spec.config import Price

# How vendors name a dated snapshot of a model: OpenAI `gpt-4o-mini-2024-07-18`,
# Anthropic `claude-sonnet-4-5-20250929`.
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})\Z")


def price_for(pricing: Mapping[str, Price], model: str) -> Price | None:
    """The price of `model`: its own entry, else the entry of the model it is a dated
    snapshot of (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`, `claude-sonnet-4-5-20250929`
    -> `claude-sonnet-4-5`), else None.

    Never a mere prefix: `gpt-4o-mini` is not `gpt-4o`, and `gpt-4.1-nano` is not `gpt-4`.
    """
    price = pricing.get(model)
    if price is not None:
        return price
    base = _SNAPSHOT_SUFFIX.sub("", model)
    return pricing.get(base) if base != model else None


def cost_usd(
    pricing: Mapping[str, Price], model: str, tokens_in: int | None, tokens_out: int | None
) -> float | None:
    """USD for one call, or None when the model has no price or usage was not reported."""
    price = price_for(pricing, model)
    if price is None or (tokens_in is None and tokens_out is None):
        return None
    return ((tokens_in or 0) * price.input + (tokens_out or 0) * price.output) / 1_000_000


def unpriced_note(pricing: Mapping[str, Price], model: str) -> str | None:
    """The warning for a model the pricing table lacks (its cost is not counted), or None."""
    if price_for(pricing, model) is not None:
        return None
    return (
        f"warning: model {model!r} has no entry under `pricing` in promptyard.yaml, so its "
        f"cost is not counted; add `{model}: {{input: USD, output: USD}}` (per million tokens)"
    )
