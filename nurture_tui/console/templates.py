"""Templates: the list and a preview of the highlighted one (rendered by the mail area)."""

from __future__ import annotations

from ..mail.preview import TemplatePreview, placeholder_preview
from ..mail.templates import TemplateInfo, list_templates
from .session import ConsoleSession

__all__ = ["TemplateInfo", "TemplatePreview", "TemplatesConsole"]


class TemplatesConsole:
    AREA = "templates"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    def list(self) -> list[TemplateInfo]:
        with self.session.read() as conn:
            return list_templates(conn)

    def preview(self, name: str) -> TemplatePreview:
        with self.session.read() as conn:
            return placeholder_preview(conn, name)
