"""Fixtures for the TUI tests live in tui_support (a uniquely named module, so that tests can import its
helpers without colliding with other directories' conftest modules)."""

from tui_support import *  # noqa: F403
