"""The sample programs shipped with nurture (`<repo>/sequences/*.yaml`): the demo's library, and what
`n` on the Sequences screen offers to start from."""

from __future__ import annotations

from pathlib import Path


def sequences_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "sequences"


def samples() -> list[Path]:
    """Every sample program file, by name."""
    return sorted(sequences_dir().glob("*.yaml"))
