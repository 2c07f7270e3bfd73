"""Query templates: slot masking (:mod:`~levers_cli.query_templates.mask`) and the template
miner (:mod:`~levers_cli.query_templates.miner`) that the caching and materialize levers and
the workflows export share, so they name the same templates.

(Not the report's Jinja2 templates: those are in ``levers_cli/report/templates/``.)
"""
