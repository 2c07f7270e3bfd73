"""What every stage reads from a call's text, below all of them: token counts
(:mod:`~levers_cli.text.tokens`, tiktoken offline)."""
