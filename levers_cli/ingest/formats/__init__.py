"""Log formats: one adapter module per format, each a class following
:class:`~levers_cli.ingest.formats.base.LogAdapter` (most subclass
:class:`~levers_cli.ingest.formats.base.MappedAdapter`), and :mod:`.pairs`, what the
request/response formats share.

The adapters are registered, in detection order, in :data:`levers_cli.ingest.ADAPTERS`.
"""
