"""Fixtures for the sequences tests live in seq_support (a uniquely named module, so that tests can import
its helpers without colliding with other directories' conftest modules)."""

from seq_support import *  # noqa: F403
