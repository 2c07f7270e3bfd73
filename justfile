# levers developer tasks. `just` is optional: each recipe is one plain command.

# Create .venv and install levers (CPU torch first) with its dev tools
setup:
    sh scripts/setup.sh

# Set up if needed, then analyze the shipped sample logs
demo:
    test -x .venv/bin/levers || sh scripts/setup.sh
    .venv/bin/levers analyze sample_logs/app_logs.jsonl.gz

# Run the tests (the same command README.md and .ci/run give)
test:
    .venv/bin/python -m pytest -q

# Lint, check formatting and the import layers (ARCHITECTURE.md)
lint:
    .venv/bin/ruff check .
    .venv/bin/ruff format --check levers_cli tests
    .venv/bin/lint-imports
    .venv/bin/python scripts/check_import_cycles.py

# Regenerate docs/cli.md from every command's --help
docs:
    .venv/bin/python scripts/cli_docs.py

# Regenerate the sample logs and their planted truths (seeded)
sample:
    .venv/bin/python sample_logs/generate.py
