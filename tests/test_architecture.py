"""ARCHITECTURE.md cannot drift from the code: every path and module it names exists, every
package and top-level module of levers_cli is named there, and its layer diagram is the
layers contract import-linter checks (pyproject.toml)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "levers_cli"
TEXT = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")

#: a backticked token that names a file or folder: a path with a known suffix or a final "/"
_PATH = re.compile(r"^[\w./-]+(\.(py|toml|md|json|j2|yml|yaml)|/)$")
#: files of the user's, not of this repository (a config, an export levers writes)
USER_FILES = frozenset({"levers.toml", "levers-router.json"})
#: a dotted module path inside levers_cli, e.g. levers_cli.redact or levers.lora.draw
_DOTTED = re.compile(r"^[a-z_]+(\.[A-Za-z_]\w*)+$")


def _ticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _table_rows() -> list[tuple[str, list[str], list[str]]]:
    """``(stage, the module column's tokens, the owns column's tokens)`` per stage row."""
    rows = []
    for line in TEXT.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`levers_cli/"):
            rows.append((cells[0], _ticked(cells[1]), _ticked(cells[2])))
    return rows


def _exists(token: str, bases: list[Path]) -> bool:
    """A path token exists from the repository root, from levers_cli/, or (a name the
    stage table's row gives relative to its modules) somewhere under one of ``bases``."""
    if token in USER_FILES:
        return True
    name = token.rstrip("/")
    want_dir = token.endswith("/")

    def kind_ok(path: Path) -> bool:
        return path.is_dir() if want_dir else path.is_file()

    if any(kind_ok(base / name) for base in (ROOT, PACKAGE)):
        return True
    return any(kind_ok(p) for base in bases if base.is_dir() for p in base.rglob(name))


def _module_defines(module: Path, name: str) -> bool:
    source = (module / "__init__.py" if module.is_dir() else module).read_text(encoding="utf-8")
    # defined, assigned, or a public name it imports (listed in __all__)
    pattern = rf"(def|class) {name}\b|^{name}\s*[:=]|import .*\b{name}\b|[\"']{name}[\"']"
    return re.search(pattern, source, re.M) is not None


def _dotted_exists(token: str) -> bool:
    """``levers_cli.a.b`` or ``a.b`` (inside levers_cli): modules down to the last part, which
    is a module too or a name the module defines."""
    parts = token.split(".")
    if parts[0] == "levers_cli":
        parts = parts[1:]
    path = PACKAGE
    for i, part in enumerate(parts):
        if (path / part).is_dir():
            path = path / part
        elif (path / f"{part}.py").is_file():
            path = path / f"{part}.py"
        else:
            return i > 0 and i == len(parts) - 1 and _module_defines(path, part)
    return True


def _is_inside(token: str) -> bool:
    first = token.split(".")[0]
    return first == "levers_cli" or (PACKAGE / first).is_dir() or (PACKAGE / f"{first}.py").exists()


def test_every_path_the_stage_table_names_exists() -> None:
    rows = _table_rows()
    assert len(rows) >= 12, "the stage table was not found"
    missing = []
    for stage, modules, owns in rows:
        bases = [ROOT / m.rstrip("/") for m in modules if m.endswith("/")]
        bases += [ROOT / m for m in modules if not m.endswith("/")]
        for token in modules + owns:
            if "<" not in token and _PATH.match(token) and not _exists(token, bases):
                missing.append(f"{stage}: {token}")
    assert missing == []


def test_every_path_and_module_named_anywhere_exists() -> None:
    """Prose and the how-to sections too: a path from the root or levers_cli/, a dotted
    module inside levers_cli."""
    bases = [PACKAGE]
    missing = [
        t
        for t in _ticked(TEXT)
        if "<" not in t
        and (
            (_PATH.match(t) and not _exists(t, bases))
            or (_DOTTED.match(t) and not _PATH.match(t) and _is_inside(t) and not _dotted_exists(t))
        )
    ]
    assert missing == []


def test_every_package_and_top_level_module_is_named() -> None:
    """levers_cli's packages (and their subpackages: ``formats/`` in the ingest row) and its
    top-level modules each appear in the stage table."""
    named = {t for _, modules, owns in _table_rows() for t in modules + owns}
    missing = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        package = init.parent.relative_to(ROOT)
        if package == Path("levers_cli"):
            continue
        full = f"{package.as_posix()}/"
        if package.parent == Path("levers_cli"):  # a stage's package: its full path
            names = {full}
        else:  # a subpackage, in its parent's row: `formats/` or `ingest/formats/`
            names = {full, f"{package.name}/", f"{package.relative_to('levers_cli').as_posix()}/"}
        if not names & named:
            missing.append(full)
    for module in sorted(PACKAGE.glob("*.py")):
        if module.name != "__init__.py" and not {f"levers_cli/{module.name}", module.name} & named:
            missing.append(f"levers_cli/{module.name}")
    assert missing == []


def test_the_layer_diagram_is_the_import_linter_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    block = TEXT.split("## Layers", 1)[1].split("```", 2)[1]
    drawn = [re.sub(r"\s+\(.*\)$", "", line).strip() for line in block.strip().splitlines()]
    normalize = [" | ".join(p.strip() for p in layer.split("|")) for layer in layers]
    assert drawn == normalize


@pytest.mark.parametrize(
    ("token", "exists"),
    [
        ("levers_cli/store.py", True),
        ("levers_cli/nothing.py", False),
        ("formats/", True),  # under levers_cli/ingest
        ("levers_cli.redact", True),
        ("levers.lora.draw", True),  # a name levers/lora/__init__.py defines
        ("levers.lora.undefined_name", False),
        ("levers_cli.nothing.here", False),
    ],
)
def test_the_checks_see_a_missing_name(token: str, exists: bool) -> None:
    found = _dotted_exists(token) if _DOTTED.match(token) and "/" not in token else None
    if found is None:
        found = _exists(token, [PACKAGE])
    assert found is exists
