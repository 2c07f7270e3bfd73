"""``python -m levers_cli``: the same as the ``levers`` command."""

from levers_cli.cli import main

if __name__ == "__main__":
    main()
