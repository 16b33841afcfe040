"""Does an activity match a sequence's event pattern (`wait_for` events, `entry.event`)?

Shared by the event front door (`events.py`, which wakes waiting enrollments) and entry (`enroll.py`,
event-entry sequences); it sits below both so neither imports the other for it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from sqlalchemy import Connection, select

from ..activity import ActivityEvent
from ..sequences.model import EventMatch
from ..store.tables import template


class TemplateNames:
    """Template name → id, looked up once per call when a pattern names a template."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int | None] = {}

    def id_of(self, name: str) -> int | None:
        if name not in self._ids:
            self._ids[name] = self._conn.execute(
                select(template.c.id).where(template.c.name == name)
            ).scalar_one_or_none()
        return self._ids[name]


def event_matches(m: EventMatch, a: ActivityEvent, sequence_id: int | None, names: TemplateNames) -> bool:
    """`a` matches `m`; a pattern naming a node only matches activities of that node in `sequence_id`."""
    if a.kind != m.kind:
        return False
    if m.node is not None and (a.node_id != m.node or a.sequence_id != sequence_id):
        return False
    if m.template is not None and (a.template_id is None or a.template_id != names.id_of(m.template)):
        return False
    if m.url is not None and not fnmatchcase(a.url or "", m.url):
        return False
    if m.form is not None:
        form = (a.meta or {}).get("form")
        if form is None or not fnmatchcase(str(form), m.form):
            return False
    return True
