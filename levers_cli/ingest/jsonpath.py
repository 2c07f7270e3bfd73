"""Nested field paths for ``--map field=path``: ``text``, ``messages[0].content``,
``messages[-1].content.answer``.

A path is a column (or key) name followed by any number of ``.key`` and ``[index]`` steps;
negative indexes count from the end. A string value that holds JSON (as CSV cells often do)
is parsed when a path steps into it.

Why our own rather than a library (checked for issue 15 with jmespath 1.1.0 and jsonpath-ng
1.17.0): both read the three documented paths, negative indexes included, but neither has
the semantics ``--map`` documents: neither steps into JSON held in a string (a CSV cell
``{"k": [1, 2]}``: ``meta.k[1]``), neither reads a column whose name itself has dots
(``a.b``), both refuse a name with a space (``my col``), and jmespath also one with a hyphen
(``user-id``) unless quoted. They are also slower on the per-record path: 100,000 records,
the same answers, 0.12 s ours, 1.09 s jmespath (compiled), 1.42 s jsonpath-ng for
``messages[0].content``; 0.15 / 1.44 / 2.19 s for ``messages[-1].content.answer``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from levers_cli.errors import MappingError

_STEP = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed path: its text, its root column and the steps after it."""

    text: str
    root: str
    steps: tuple[str | int, ...]

    def resolve(self, record: dict[str, Any]) -> Any:
        """Return the value at this path in ``record``, or ``None`` when any step is absent."""
        if self.text in record:  # a column whose name itself has dots or brackets
            return record[self.text]
        value: Any = record.get(self.root, _MISSING)
        for step in self.steps:
            if value is _MISSING or value is None:
                return None
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    return None
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return None
                value = value[step]
            else:
                if not isinstance(value, dict):
                    return None
                value = value.get(step, _MISSING)
        return None if value is _MISSING else value


def parse_path(text: str) -> FieldPath:
    """Parse ``text`` into a :class:`FieldPath`.

    Raises:
        MappingError: the path is empty or malformed (``messages[x]``, ``a..b``).
    """
    path = text.strip()
    match = re.match(r"[^.\[\]]+", path)
    if not match:
        raise MappingError(f"bad field path {text!r}: it must start with a column name")
    root = match.group(0)
    steps: list[str | int] = []
    position = match.end()
    while position < len(path):
        step = _STEP.match(path, position)
        if not step:
            raise MappingError(
                f"bad field path {text!r} at character {position + 1}; "
                "use name, name.key or name[0] steps, e.g. messages[-1].content"
            )
        steps.append(step.group(1) if step.group(1) is not None else int(step.group(2)))
        position = step.end()
    return FieldPath(path, root, tuple(steps))
