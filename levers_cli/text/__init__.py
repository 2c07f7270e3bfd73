"""What every stage reads from a call's text, below all of them: a message's plain text and
a text cut for display (:mod:`~levers_cli.text.content`), a query's normalized form and hash
(:mod:`~levers_cli.text.query`), and token counts (:mod:`~levers_cli.text.tokens`, tiktoken
offline)."""
