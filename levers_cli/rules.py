"""Provider rules for prompt caching and batch pricing, read from ``provider_rules.toml``
(one row per provider and model family, each with its source page)."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """Caching and batch rules of one provider's model family (see ``provider_rules.toml``)."""

    provider: str
    models: str
    min_cacheable_tokens: int
    increment_tokens: int
    ttl_seconds: int
    read_multiplier: float
    write_multiplier: float
    batch_factor: float
    source: str
    max_breakpoints: int = 0
    extended_ttl_seconds: int = 0
    batch_cache: str = "none"
    prefix_caching: bool = True

    @property
    def writes_charged(self) -> bool:
        """Whether the provider charges cache writes (a premium over the input price, paid
        whether a later request reads the prefix or not)."""
        return self.write_multiplier > 1.0

    def cacheable(self, tokens: int) -> int:
        """Tokens of a ``tokens``-long shared prefix the provider serves from its cache: 0
        below :attr:`min_cacheable_tokens`, else rounded down to :attr:`increment_tokens`."""
        if tokens < self.min_cacheable_tokens or not self.prefix_caching:
            return 0
        return tokens // self.increment_tokens * self.increment_tokens


#: ``batch_cache`` values: what a batch job's requests may read from a prefix cache.
BATCH_CACHE = ("none", "within_batch")


@cache
def provider_rules() -> tuple[ProviderRule, ...]:
    """All rows, in file order (the first matching row wins)."""
    text = resources.files("levers_cli").joinpath("provider_rules.toml").read_text("utf-8")
    rules = tuple(ProviderRule(**row) for row in tomllib.loads(text)["rule"])
    for rule in rules:
        if rule.batch_cache not in BATCH_CACHE or rule.increment_tokens < 1:
            raise ValueError(f"provider_rules.toml: bad row for {rule.provider} {rule.models}")
    return rules


def rule_for(provider: str | None, model: str | None) -> ProviderRule | None:
    """The first rule whose provider matches and whose ``models`` glob matches ``model``."""
    for rule in provider_rules():
        if rule.provider == (provider or "") and fnmatch.fnmatch(
            (model or "").lower(), rule.models
        ):
            return rule
    return None


def batch_factor(
    provider: str | None, model: str | None, overrides: dict[str, float] | None = None
) -> tuple[float, str]:
    """Share of the list price paid through the provider's batch API, and its source: the
    ``[batch] price_factor`` override for the provider when set, else the table's row, else
    1.0 (no known batch discount)."""
    if overrides and (provider or "") in overrides:
        return float(overrides[provider or ""]), "[batch] price_factor"
    rule = rule_for(provider, model)
    if rule is None:
        return 1.0, "no provider_rules.toml row: no batch discount"
    return rule.batch_factor, rule.source
