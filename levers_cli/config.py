"""Configuration: the shipped defaults (``defaults.toml``, every value with its source)
overlaid by the user's ``levers.toml`` and by command-line flags.

``Config.origin`` says where each effective value came from: ``default``, the file's path,
or ``flag``.

Every value of ``levers.toml`` is checked against the kind of its default before anything uses
it (a whole number, a finite number, true/false, a string, a list, a table of levels), and
against the allowed values where a setting has them (:data:`CHOICES`); NaN and infinities are
refused. A partial table of a fixed shape (``strong_share = { expected = 0.4 }``) keeps the
defaults of the keys it leaves out.
"""

from __future__ import annotations

import copy
import json
import math
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

#: Allowed values of a string setting, or of every value of a table setting.
CHOICES: dict[str, tuple[str, ...]] = {
    # hdbscan's cluster_selection_method (hdbscan docs, "Parameter Selection for HDBSCAN")
    "cluster.hdbscan_selection": ("leaf", "eom"),
    "report.map_projection": ("pca", "umap"),
    "routing.keyword_overrides": ("strong", "cheap"),
    # levers_cli.engine.ENGINES (issue 19)
    "engine.name": ("local", "ray"),
}
#: Tables whose keys are the user's own: what a key names and the kind of its values. Every
#: other table keeps the keys of its default.
OPEN_TABLES: dict[str, tuple[str, type]] = {
    "tiers.cheap": ("provider", str),
    "tiers.strong": ("provider", str),
    "routing.keyword_overrides": ("word", str),
    "context.context_windows": ("model", int),
    "batch.price_factor": ("provider", float),
    "lora.price": ("price", float),
}
#: Settings whose default is a whole number but which take any finite number (a scale or a
#: duration, read with ``float()``).
REAL_VALUED = frozenset(
    {
        "analysis.days_per_month",
        "batch.burst_max_minutes",
        "conversations.retry_window_s",
        "batch.burst_isolation_minutes",
        "routing.feature_scale",
        "report.effort_units",
    }
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
    section = ""
    comment: list[str] = []
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


def _shown(value: Any) -> str:
    """``value`` as TOML spells it (``nan``, ``"tsne"``, ``true``, ``[0.8, nan]``), cut to 60
    characters."""
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_shown(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {_shown(v)}" for k, v in value.items()) + " }"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _fits(value: Any, kind: type, real: bool) -> bool:
    """Whether ``value`` is of ``kind`` (bool, int, float, str); numbers must be finite, a
    whole number is taken where a number is asked, and ``real`` lets an int setting take any
    number."""
    if kind is bool or kind is str:
        return isinstance(value, kind)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind is int and not real:
        return isinstance(value, int)
    return math.isfinite(value)


def _kind_words(kind: type, real: bool) -> str:
    if kind is int and not real:
        return "a whole number"
    return {bool: "true or false", str: "a string"}.get(kind, "a finite number")


def _plural(words: str) -> str:
    """``a whole number`` → ``whole numbers``, for a table's or a list's values."""
    return {"true or false": "true/false values"}.get(words, words.removeprefix("a ") + "s")


def _table_kind(name: str, default: dict[str, Any], real: bool) -> tuple[str, type, tuple | None]:
    """What a table setting holds: its description, the kind of its values and its keys
    (None: the user's own)."""
    keys: tuple | None = tuple(default)
    if name in OPEN_TABLES:
        key_name, kind = OPEN_TABLES[name]
        keys = PRICE_FIELDS if name == "lora.price" else None
    else:
        key_name, kind = "", type(next(iter(default.values())))
    shape = "{ " + ", ".join(f"{k} = …" for k in keys or (f"<{key_name}>",)) + " }"
    choices = CHOICES.get(name)
    of = " or ".join(f'"{c}"' for c in choices) if choices else _plural(_kind_words(kind, real))
    return f"a table {shape} of {of}", kind, keys


def _checked(where: str, name: str, value: Any, default: Any) -> Any:
    """``value`` (from ``levers.toml``) checked against the kind of ``default``; a fixed-shape
    table comes back merged over its default.

    Args:
        where: ``"path: [section] key"`` for the message.
        name: ``"section.key"``.

    Raises:
        ConfigError: naming the setting, its value and the kind expected.
    """
    real = name in REAL_VALUED
    choices = CHOICES.get(name)
    if isinstance(default, dict):
        what, kind, keys = _table_kind(name, default, real)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} = {_shown(value)}: expected {what}")
        for key, item in value.items():
            if keys is not None and key not in keys:
                raise ConfigError(f"{where} has an unknown key {key!r}; use {', '.join(keys)}")
            if not _fits(item, kind, real) or (choices and item not in choices):
                raise ConfigError(f"{where}: {key} = {_shown(item)}: expected {what}")
        return value if name in OPEN_TABLES else {**default, **value}
    if isinstance(default, list):
        kind = type(default[0])
        if not isinstance(value, list) or not all(_fits(v, kind, real) for v in value):
            what = f"a list of {_plural(_kind_words(kind, real))}"
            raise ConfigError(f"{where} = {_shown(value)}: expected {what}")
        return value
    kind = type(default)
    if not _fits(value, kind, real):
        raise ConfigError(f"{where} = {_shown(value)}: expected {_kind_words(kind, real)}")
    if choices and value not in choices:
        shown = ", ".join(f'"{c}"' for c in choices)
        raise ConfigError(f"{where} = {_shown(value)}: expected one of {shown}")
    return value


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
            if not _fits(value, float, True) or value < 0:
                raise ConfigError(
                    f'{path}: [prices."{model}"] {key} = {_shown(value)} is not a price in '
                    "USD/MTok (a finite number ≥ 0)"
                )


def load_config(path: str | None = None) -> Config:
    """Load defaults, then ``path`` (or ``./levers.toml`` when it exists) over them.

    Raises:
        ConfigError: the file is missing (when named), not TOML, or has an unknown section or
            key, a value of the wrong kind (see :func:`_checked`), NaN or an infinity, or a
            value outside a setting's :data:`CHOICES`.
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
            checked = {}
            for key, value in table.items():
                if key not in values[section]:
                    raise ConfigError(f"{path}: unknown setting [{section}] {key}")
                where = f"{path}: [{section}] {key}"
                checked[key] = _checked(where, f"{section}.{key}", value, values[section][key])
            table = checked
        merged.setdefault(section, {}).update(table)
        for key in table:
            origin[f"{section}.{key}"] = path
    return Config(merged, origin, rows)
