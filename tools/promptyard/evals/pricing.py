"""Cost of a call from the `pricing` table of promptyard.yaml (USD per million tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from promptyard.spec.config import Price


def price_for(pricing: Mapping[str, Price], model: str) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry that prefixes it.

    A prefix lets `gpt-4o-mini` price dated snapshots such as `gpt-4o-mini-2024-07-18`.
    """
    if model in pricing:
        return pricing[model]
    best: str | None = None
    for name in pricing:
        if model.startswith(name) and (best is None or len(name) > len(best)):
            best = name
    return pricing[best] if best is not None else None


def cost_usd(
    pricing: Mapping[str, Price], model: str, tokens_in: int | None, tokens_out: int | None
) -> float | None:
    """USD for one call, or None when the model has no price or usage was not reported."""
    price = price_for(pricing, model)
    if price is None or (tokens_in is None and tokens_out is None):
        return None
    return ((tokens_in or 0) * price.input + (tokens_out or 0) * price.output) / 1_000_000
