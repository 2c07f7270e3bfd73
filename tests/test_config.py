"""levers.toml: every value is checked against the kind of its default (and the allowed
values where a setting has them) when it is read, so a wrong one is one line naming the key
and the kind expected, and exit 2 (bad usage), never a traceback later."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from levers_cli.cli import app
from levers_cli.config import CHOICES, _checked, load_config
from levers_cli.errors import ConfigError, UsageError
from levers_cli.report.projection import project

LEVEL_TABLE = "a table { conservative = …, expected = …, aggressive = … } of"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        # the two: a TypeError and a raw ValueError before
        ("[routing]\nstrong_share = 0.3",
         f"[routing] strong_share = 0.3: expected {LEVEL_TABLE} finite numbers"),
        ('[report]\nmap_projection = "tsne"',
         '[report] map_projection = "tsne": expected one of "pca", "umap"'),
        # NaN and infinities are read by TOML and refused
        ("[analysis]\ndays_per_month = nan",
         "[analysis] days_per_month = nan: expected a finite number"),
        ("[analysis]\nmin_span_hours_for_run_rate = -inf",
         "[analysis] min_span_hours_for_run_rate = -inf: expected a finite number"),
        ("[caching]\nsemantic_sweep = [0.8, nan]",
         "[caching] semantic_sweep = [0.8, nan]: expected a list of finite numbers"),
        ("[routing]\nstrong_share = { expected = inf }",
         f"[routing] strong_share: expected = inf: expected {LEVEL_TABLE} finite numbers"),
        ('[prices."m"]\ninput = nan\noutput = 1',
         '[prices."m"] input = nan is not a price in USD/MTok (a finite number ≥ 0)'),
        ("[lora]\nprice = { input = inf, output = 1.2 }",
         "[lora] price: input = inf: expected a table { input = …, cached_input = …, "
         "cache_write = …, output = …, cache_write_1h = …, input_audio = …, output_audio = … } "
         "of finite numbers"),
        # whole numbers, booleans, strings, lists
        ("[cluster]\nseed = 1.5", "[cluster] seed = 1.5: expected a whole number"),
        ("[cluster]\nseed = true", "[cluster] seed = true: expected a whole number"),
        ('[report]\nredact = "yes"', '[report] redact = "yes": expected true or false'),
        ("[embed]\nembedder = 3", "[embed] embedder = 3: expected a string"),
        ('[lora]\nfeedback_keys = "accepted"',
         '[lora] feedback_keys = "accepted": expected a list of strings'),
        # tables: the fixed keys of the default, or the user's own keys with values of a kind
        ('[routing]\nstrong_share = { expected = "half" }',
         f'[routing] strong_share: expected = "half": expected {LEVEL_TABLE} finite numbers'),
        ("[routing]\nstrong_share = { expectd = 0.4 }",
         "[routing] strong_share has an unknown key 'expectd'; use conservative, expected, "
         "aggressive"),
        ('[tiers]\ncheap = "gpt-4o-mini"',
         '[tiers] cheap = "gpt-4o-mini": expected a table { <provider> = … } of strings'),
        ('[routing]\nkeyword_overrides = { PII = "strongest" }',
         '[routing] keyword_overrides: PII = "strongest": expected a table { <word> = … } of '
         '"strong" or "cheap"'),
        ('[context]\ncontext_windows = { "my-model" = 1.5 }',
         "[context] context_windows: my-model = 1.5: expected a table { <model> = … } of whole "
         "numbers"),
        ("[lora]\nprice = { inptu = 1 }",
         "[lora] price has an unknown key 'inptu'; use input, cached_input, cache_write, output, "
         "cache_write_1h, input_audio, output_audio"),
        ('[cluster]\nhdbscan_selection = "leave"',
         '[cluster] hdbscan_selection = "leave": expected one of "leaf", "eom"'),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_names_the_key_and_the_kind(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "levers.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: {message}"
    assert info.value.exit_code == 2


def test_values_of_the_right_kind_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "levers.toml"
    path.write_text(
        "[analysis]\ndays_per_month = 30.44\n"  # a scale: any finite number
        "[cluster]\nsmall_input_distance = 1\n"  # a whole number where a number is asked
        "[routing]\nstrong_share = { expected = 0.4 }\n"  # one level; the others kept
        'keyword_overrides = { PII = "strong" }\n'  # the user's own words: replaces
        "[lora]\nprice = { input = 0.3, output = 1.2 }\n"
        "[batch]\nprice_factor = { openai = 0.5 }\n"
    )
    config = load_config(str(path))
    assert config.get("analysis", "days_per_month") == 30.44
    assert config.get("cluster", "small_input_distance") == 1
    assert config.get("routing", "strong_share") == {
        "conservative": 0.75, "expected": 0.4, "aggressive": 0.25
    }  # fmt: skip
    assert config.get("routing", "keyword_overrides") == {"PII": "strong"}
    assert config.get("lora", "price") == {"input": 0.3, "output": 1.2}
    assert config.origin["routing.strong_share"] == str(path)
    assert config.origin["routing.max_difficulty"] == "default"


def test_every_default_passes_its_own_check() -> None:
    """A levers.toml that repeats defaults.toml is accepted as it is."""
    text = resources.files("levers_cli").joinpath("defaults.toml").read_text("utf-8")
    for section, table in tomllib.loads(text).items():
        for key, value in table.items():
            assert _checked(f"[{section}] {key}", f"{section}.{key}", value, value) == value


def test_the_choices_are_what_their_users_take() -> None:
    assert set(CHOICES["report.map_projection"]) == {"pca", "umap"}
    vectors = np.eye(4, dtype=np.float32)
    assert project(vectors, "pca").shape == (4, 2)
    with pytest.raises(ValueError, match="choose pca or umap"):
        project(vectors, "tsne")
    assert issubclass(ConfigError, UsageError) and UsageError.exit_code == 2


@pytest.mark.parametrize(
    "command",
    [["config", "show"], ["simulate"], ["report"], ["check", "--max-monthly-cost", "1"],
     ["export", "caps"]],
)  # fmt: skip
def test_the_cli_exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "levers.toml"
    path.write_text("[routing]\nstrong_share = 0.3\n")
    workspace = tmp_path / "absent.duckdb"  # the config is read before the workspace
    args = [*command, "--config", str(path)]
    if command[0] != "config":
        args += ["-w", str(workspace)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}: [routing] strong_share = 0.3: expected {LEVEL_TABLE} finite numbers\n"
    )
    assert result.stdout == ""
