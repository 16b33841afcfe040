"""`python -m nurture_tui` = the `nurture` command."""

from .cli import main

main()
