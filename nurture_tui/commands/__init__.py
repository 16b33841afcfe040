"""Typer sub-apps, one module per area. Modules import heavy dependencies inside the commands, so
that `nurture --help` and non-TUI commands start fast."""
