"""Pricing a call, below the levers and the simulation that both need it.

- :mod:`~levers_cli.pricing.rates`: per-token rate cards read from genai-prices.
- :mod:`~levers_cli.pricing.plan`: the per-call plan (what each lever changes about a call)
  and its cost in USD.
- :mod:`~levers_cli.pricing.prefix`: the cached prefix a call can have on the plan under its
  plan model's provider rules (minimum, increments, TTL, batch jobs), and the check that every
  cached token of a plan is reachable.
- :mod:`~levers_cli.pricing.models`: model names as tiers and cap groups compare them
  (the family, snapshot suffixes aside).

What the logged calls cost (``calls.cost_usd``, with price overrides) is priced once at
analysis by :mod:`levers_cli.enrich.prices`.
"""
