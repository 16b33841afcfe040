"""User-facing errors. The CLI prints `str(err)` as one line and exits 2; the TUI shows it in a toast."""

from __future__ import annotations


class NurtureError(Exception):
    """An error caused by the user's input or environment, with a one-line explanation."""

    exit_code = 2


class ValidationError(NurtureError):
    """Input failed validation; `where` names the file/row/field/path."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class NotFoundError(NurtureError):
    pass


class PermissionDenied(NurtureError):
    pass
