"""The ``PartialCall`` TypedDict: the keys an adapter or ``--map`` may fill, each a column of
``calls`` with the Python type of its DuckDB type (mypy checks the adapters against it; these
tests keep it in step with the schema, which mypy cannot see)."""

from __future__ import annotations

import types
import typing
from datetime import datetime

from levers_cli.ingest.formats.base import PartialCall
from levers_cli.ingest.formats.generic import DEFAULT_COLUMNS
from levers_cli.ingest.mapping import CONVERTERS
from levers_cli.schema import CALL_COLUMNS, INGEST_COLUMNS

#: The columns of ``calls`` that the ingest pipeline fills itself, never an adapter
#: (ingest/rows.py ``finish_row``, ``process_records``; ingest/sink.py ids and runs).
PIPELINE_FILLED = {
    "format",
    "tokens_source",
    "query_hash",
    "record_hash",
    "source_file",
    "source_line",
    "run_id",
}

#: The Python type an adapter gives each DuckDB column type (schema.CALL_COLUMNS).
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "VARCHAR": (str,),
    "BIGINT": (int,),
    "INTEGER": (int,),
    "DOUBLE": (float,),
    "DECIMAL(18,9)": (float,),
    "BOOLEAN": (bool,),
    "TIMESTAMPTZ": (datetime,),
    "JSON": (list, dict),
}


def test_partial_call_keys_are_the_ingest_columns_the_pipeline_leaves_to_adapters():
    keys = set(PartialCall.__annotations__)
    assert keys == set(INGEST_COLUMNS) - PIPELINE_FILLED
    assert not PartialCall.__total__  # every key may be left out


def test_mapped_and_default_columns_are_partial_call_keys():
    # generic.py and mapping.py set these keys by name, where mypy cannot check them
    keys = set(PartialCall.__annotations__)
    assert set(CONVERTERS) | {"metadata"} == keys
    assert set(DEFAULT_COLUMNS) <= keys


def test_partial_call_value_types_match_the_column_types():
    hints = typing.get_type_hints(PartialCall)
    for key, hint in hints.items():
        parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = [typing.get_origin(p) or p for p in parts if p is not type(None)]
        assert len(kinds) == 1, key
        column_type = CALL_COLUMNS[key].split()[0]
        assert kinds[0] in PYTHON_TYPES[column_type], (key, kinds[0], column_type)
