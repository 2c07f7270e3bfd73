"""Configuration: the shipped defaults (``defaults.toml``, every value with its source)
overlaid by the user's ``levers.toml`` and by command-line flags.

``Config.origin`` says where each effective value came from: ``default``, the file's path,
or ``flag``.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from levers_cli.errors import ConfigError

USER_CONFIG = "levers.toml"
PRICE_FIELDS = (
    "input",
    "cached_input",
    "cache_write",
    "output",
    "cache_write_1h",
    "input_audio",
    "output_audio",
)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A model's prices in USD per million tokens, from ``[prices."MODEL"]``: input and
    output, and optionally cached input, cache writes (5-minute and 1-hour) and audio
    tokens in and out (each falls back to the input or output price when absent)."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None
    input_audio: float | None = None
    output_audio: float | None = None


@dataclass
class Config:
    """The effective configuration: ``values[section][key]`` and where each came from."""

    values: dict[str, dict[str, Any]]
    origin: dict[str, str] = field(default_factory=dict)
    #: ``[[price_rows]]`` of levers.toml: own price rows tried before the shipped ones
    #: (:mod:`levers_cli.enrich.rates`), already checked.
    price_rows: tuple[Any, ...] = ()

    def get(self, section: str, key: str) -> Any:
        """One value.

        Raises:
            ConfigError: the section or key does not exist.
        """
        try:
            return self.values[section][key]
        except KeyError:
            raise ConfigError(f"no setting [{section}] {key}") from None

    def set(self, section: str, key: str, value: Any, origin: str = "flag") -> None:
        """Override one value (from a command-line flag)."""
        self.values.setdefault(section, {})[key] = value
        self.origin[f"{section}.{key}"] = origin

    @property
    def price_overrides(self) -> dict[str, PriceOverride]:
        """``[prices."MODEL"]`` tables as :class:`PriceOverride` by model id."""
        return {
            model: PriceOverride(**table) for model, table in self.values.get("prices", {}).items()
        }


def default_notes() -> dict[str, str]:
    """``section.key`` → the comment block written above that key in ``defaults.toml`` (its
    meaning and source), for ``levers config show``."""
    text = resources.files("levers_cli").joinpath("defaults.toml").read_text("utf-8")
    notes: dict[str, str] = {}
    section, comment = "", []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            section, comment = stripped.strip("[]"), []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif "=" in stripped and section:
            key = stripped.split("=", 1)[0].strip()
            notes[f"{section}.{key}"] = " ".join(comment)
            comment = []
    return notes


def _defaults() -> dict[str, Any]:
    text = resources.files("levers_cli").joinpath("defaults.toml").read_text("utf-8")
    return tomllib.loads(text)


def _check_prices(path: str, prices: Any) -> None:
    if not isinstance(prices, dict):
        raise ConfigError(f"{path}: [prices] must be a table of models")
    for model, table in prices.items():
        if not isinstance(table, dict):
            raise ConfigError(f'{path}: [prices."{model}"] must be a table')
        unknown = set(table) - set(PRICE_FIELDS)
        if unknown:
            raise ConfigError(
                f'{path}: [prices."{model}"] has unknown key(s) {", ".join(sorted(unknown))}; '
                f"use {', '.join(PRICE_FIELDS)} (USD per million tokens)"
            )
        for key in ("input", "output"):
            if key not in table:
                raise ConfigError(
                    f'{path}: [prices."{model}"] needs {key} (USD per million tokens)'
                )
        for key, value in table.items():
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    f'{path}: [prices."{model}"] {key} = {value!r} is not a price in USD/MTok'
                )


def load_config(path: str | None = None) -> Config:
    """Load defaults, then ``path`` (or ``./levers.toml`` when it exists) over them.

    Raises:
        ConfigError: the file is missing (when named), not TOML, or has a value of the wrong
            kind or an unknown section/key.
    """
    values = _defaults()
    origin = {f"{s}.{k}": "default" for s, table in values.items() for k in table}
    if path is None and os.path.exists(USER_CONFIG):
        path = USER_CONFIG
    if path is None:
        return Config(values, origin)
    try:
        with open(path, "rb") as handle:
            user = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    merged = copy.deepcopy(values)
    rows: tuple[Any, ...] = ()
    for section, table in user.items():
        if section == "price_rows":
            from levers_cli.price_rows import parse_rows

            rows = parse_rows(table, path)
            continue
        if section == "prices":
            _check_prices(path, table)
        elif section not in values:
            known = ", ".join([*values, "prices", "price_rows"])
            raise ConfigError(f"{path}: unknown section [{section}]; known: {known}")
        elif not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        else:
            for key in table:
                if key not in values[section]:
                    raise ConfigError(f"{path}: unknown setting [{section}] {key}")
        merged.setdefault(section, {}).update(table)
        for key in table:
            origin[f"{section}.{key}"] = path
    return Config(merged, origin, rows)
