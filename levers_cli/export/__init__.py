"""Exports: the artifacts that put each lever into production, one module per artifact,
each written in the format its consumer reads (../shared/DESIGN.md §7).

Every exporter is a function ``export_<kind>(ws, config, out_dir, *, force, ...) ->
ExportResult`` registered in :data:`EXPORTERS`; it checks the workspace was analyzed
(:meth:`~levers_cli.store.Workspace.require_analysis`) and that it may write
(:func:`~levers_cli.export.common.prepare_out_dir`), and raises
:class:`~levers_cli.export.common.ExportError` otherwise. To add one: a module here with that
function, and a line in :data:`EXPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from levers_cli.export.common import DEFAULT_OUT, ExportError, ExportResult

if TYPE_CHECKING:
    from levers_cli.config import Config
    from levers_cli.store import Workspace

#: kind → (module, function); imported on use so that `levers --help` stays fast.
EXPORTERS: dict[str, tuple[str, str]] = {
    "batch": ("levers_cli.export.batch", "export_batch"),
    "caps": ("levers_cli.export.caps", "export_caps"),
    "judge": ("levers_cli.export.judge", "export_judge"),
    "lora": ("levers_cli.export.lora", "export_lora"),
    "router-config": ("levers_cli.export.router_config", "export_router_config"),
    "shadow": ("levers_cli.export.shadow", "export_shadow"),
    "workflows": ("levers_cli.export.workflows", "export_workflows"),
}


def get_exporter(kind: str) -> Callable[..., ExportResult]:
    """The export function of ``kind``.

    Raises:
        ExportError: no exporter of that kind.
    """
    if kind not in EXPORTERS:
        raise ExportError(f"unknown export {kind!r}; choose one of: {', '.join(EXPORTERS)}")
    module, name = EXPORTERS[kind]
    return getattr(import_module(module), name)


def run_export(
    kind: str, ws: Workspace, config: Config, out_dir: str, **options: Any
) -> ExportResult:
    """Check the workspace was analyzed, then run the exporter of ``kind``.

    Raises:
        WorkspaceError: no calls, or not fully analyzed.
        ExportError: as the exporter raises, or a file cannot be written (the message names
            it).
    """
    ws.require_analysis()
    try:
        return get_exporter(kind)(ws, config, out_dir, **options)
    except OSError as exc:
        raise ExportError(f"{exc.filename or out_dir}: cannot write ({exc.strerror})") from None


__all__ = [
    "DEFAULT_OUT",
    "EXPORTERS",
    "ExportError",
    "ExportResult",
    "get_exporter",
    "run_export",
]
