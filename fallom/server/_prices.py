"""Model prices from the catalog's ``[prices]`` table, and the cost of LLM calls.

Prices are US dollars per million input and per million output tokens. A model
takes the price of its own key, else of the longest key K it starts with as
``K-`` ("gpt-4o-2024-08-06" takes "gpt-4o"'s). Costs are computed when read, from
the prices loaded now: a price changed in the catalog applies to old traces too.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

__all__ = ["Price", "Prices", "Usage", "parse_prices", "per_model_cost", "totals"]

_FIELDS = ("input", "output")


class Price(NamedTuple):
    """USD per million input tokens, per million output tokens."""

    input: float
    output: float


def _amount(key: str, field: str, value: Any) -> float:
    """A price: a finite number of dollars, 0 or more (ValueError naming the key if not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"prices.{key}: {field} must be a finite number >= 0 (US dollars "
                         f"per million tokens), not {value!r}")
    return float(value)


def parse_prices(section: Any) -> Dict[str, Price]:
    """The ``[prices]`` table as read from the file, checked.

    Raises:
        ValueError: an entry that is not a table, an unknown field, a missing or
            negative or non-finite price; the message names the key.
    """
    if not isinstance(section, Mapping):
        raise ValueError("[prices] must be a table of models")
    found: Dict[str, Price] = {}
    for key, entry in section.items():
        if not key or not isinstance(entry, Mapping):
            raise ValueError(f"prices.{key}: must be a table with input and output")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ValueError(f"prices.{key}: unknown fields {unknown}; expected input, output")
        missing = [name for name in _FIELDS if name not in entry]
        if missing:
            raise ValueError(f"prices.{key}: missing {', '.join(missing)}")
        found[key] = Price(*(_amount(key, name, entry[name]) for name in _FIELDS))
    return found


class Usage(NamedTuple):
    """One LLM call's model and tokens, as the store reads them off its record."""

    model: Optional[str]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    total_tokens: Optional[int]


class Prices:
    """The loaded prices; :meth:`price_of` matches a model to one."""

    def __init__(self, table: Optional[Mapping[str, Price]] = None) -> None:
        self.table: Dict[str, Price] = dict(table or {})
        # longest keys first: the first K with model.startswith(K + "-") is the longest
        self._prefixes = sorted(self.table, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.table)

    def as_json(self) -> Dict[str, Dict[str, float]]:
        return {key: price._asdict() for key, price in sorted(self.table.items())}

    def price_of(self, model: Optional[str]) -> Optional[Price]:
        """The model's price: its own key's, else the longest key it extends with "-"."""
        if model is None:
            return None
        exact = self.table.get(model)
        if exact is not None:
            return exact
        return next((self.table[k] for k in self._prefixes if model.startswith(k + "-")), None)

    def cost(self, model: Optional[str], input_tokens: Optional[int],
             output_tokens: Optional[int]) -> Optional[float]:
        """Dollars of one call (or of tokens added up per model); None: no price known."""
        price = self.price_of(model)
        if price is None or (input_tokens is None and output_tokens is None):
            return None
        return ((input_tokens or 0) * price.input + (output_tokens or 0) * price.output) / 1e6


def _add(total: Optional[int], value: Optional[int]) -> Optional[int]:
    return total if value is None else (total or 0) + value


def totals(calls: Iterable[Usage], prices: Prices) -> Dict[str, Any]:
    """Tokens and cost of LLM calls: ``{input_tokens, output_tokens, total_tokens, cost_usd,
    unpriced_models}``. Tokens are null when no call counted any; cost is null when no
    call's model has a price; unpriced_models lists the models with tokens and no price."""
    sums: List[Optional[int]] = [None, None, None]
    cost: Optional[float] = None
    unpriced: set[str] = set()
    for call in calls:
        sums = [_add(s, v) for s, v in zip(sums, call[1:])]
        spent = prices.cost(call.model, call.input_tokens, call.output_tokens)
        if spent is not None:
            cost = (cost or 0.0) + spent
        elif call.model is not None and call[1:] != (None, None, None) \
                and prices.price_of(call.model) is None:
            unpriced.add(call.model)
    return {"input_tokens": sums[0], "output_tokens": sums[1], "total_tokens": sums[2],
            "cost_usd": None if cost is None else round(cost, 8),
            "unpriced_models": sorted(unpriced)}


def per_model_cost(tokens: Iterable[Tuple[Optional[str], int, int]],
                   prices: Prices) -> Optional[float]:
    """Dollars of (model, input tokens, output tokens) sums; None when none is priced."""
    found = [prices.cost(model, inp, out) for model, inp, out in tokens]
    priced = [value for value in found if value is not None]
    return round(sum(priced), 8) if priced else None
