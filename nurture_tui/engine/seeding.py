"""Putting sequences and due enrollments straight into a store: for the engine benchmark, tests and
load experiments (the normal path is `nurture sequences apply/publish` and entry)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from ..sequences.model import SequenceDef
from ..store.engine import BULK_TX_LEADS, write_tx
from ..store.tables import enrollment, lead, sequence, sequence_version

SEND_WAIT: dict[str, Any] = {"name": "drip", "steps": [
    {"id": "s1", "send": {"template": "welcome"}},
    {"id": "w1", "wait": {"duration": "3d"}},
]}
WELCOME_SUBJECT = "Hello {{ lead.first_name }}, a note for {{ lead.company or 'you' }}"
WELCOME_HTML = (
    "<html><body><p>Hi {{ lead.first_name }},</p>"
    "<p>Teams at {{ lead.company }} use us to cut onboarding time.</p>"
    "{% if lead.title %}<p>As {{ lead.title }}, you might like our guide.</p>{% endif %}"
    "<ul>{% for item in ['Guide', 'Webinar', 'Pricing'] %}<li>{{ item }}</li>{% endfor %}</ul>"
    "<p><a href=\"https://example.com/pricing\">See pricing</a></p>"
    "<p>{{ sender.name }}</p></body></html>"
)


def publish_definition(conn: Connection, definition: dict[str, Any], now: datetime, status: str = "active") -> int:
    """Insert a sequence and its version 1 from a definition dict (validated by the model); returns the
    version id."""
    defn = SequenceDef.model_validate(definition)
    sid = conn.execute(insert(sequence).values(
        name=defn.name, status=status, draft=defn.to_json(), created_at=now, updated_at=now
    )).inserted_primary_key[0]  # type: ignore[index]
    from ..sequences.service import checksum

    vid = conn.execute(insert(sequence_version).values(
        sequence_id=sid, number=1, definition=defn.to_json(), checksum=checksum(defn.to_json()), published_at=now
    )).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(sequence.update().where(sequence.c.id == sid).values(current_version_id=vid))
    return int(vid)


def make_leads(conn: Connection, n: int, now: datetime, **fields: Any) -> list[int]:
    start = conn.execute(select(lead.c.id).order_by(lead.c.id.desc()).limit(1)).scalar() or 0
    rows = [{"email": f"lead{start + i}@example.com", "first_name": f"Lead{start + i}", "created_at": now,
             "updated_at": now, **fields} for i in range(n)]
    ins = insert(lead).returning(lead.c.id, sort_by_parameter_order=True)
    return [int(x) for x in conn.execute(ins, rows).scalars()]


def seed_due(engine: Engine, n: int, now: datetime, *, spread: timedelta | None = None, seed: int = 7,
             definition: dict[str, Any] | None = None, chunk: int = BULK_TX_LEADS) -> dict[int, datetime]:
    """`n` leads enrolled in a send→wait sequence (template `welcome`), all due by `now` (spread
    uniformly over the preceding `spread` when given). Returns enrollment id → due_at."""
    from ..mail.templates import upsert_template

    rnd = random.Random(seed)
    with write_tx(engine) as conn:
        upsert_template(conn, name="welcome", subject=WELCOME_SUBJECT, html=WELCOME_HTML, user="seed", now=now)
        vid = publish_definition(conn, definition or SEND_WAIT, now)
        seq_id = conn.execute(select(sequence_version.c.sequence_id).where(sequence_version.c.id == vid)).scalar_one()
        start_node = SequenceDef.model_validate(definition or SEND_WAIT).steps[0].id
    dues: dict[int, datetime] = {}
    for first in range(0, n, chunk):
        size = min(chunk, n - first)
        with write_tx(engine) as conn:
            ids = list(conn.execute(insert(lead).returning(lead.c.id, sort_by_parameter_order=True), [
                {"email": f"l{first + i}@example.com", "first_name": f"F{first + i}", "company": "Acme",
                 "title": "CTO" if i % 3 == 0 else None, "created_at": now, "updated_at": now}
                for i in range(size)
            ]).scalars())
            rows = []
            for lid in ids:
                due = now - timedelta(seconds=rnd.uniform(0, spread.total_seconds())) if spread else now
                rows.append({"lead_id": lid, "sequence_id": seq_id, "version_id": vid, "node_id": start_node,
                             "status": "active", "due_at": due, "entered_at": due, "node_entered_at": due,
                             "steps": 0, "path": []})
            ins = insert(enrollment).returning(enrollment.c.id, sort_by_parameter_order=True)
            for eid, row in zip(conn.execute(ins, rows).scalars(), rows, strict=True):
                dues[eid] = row["due_at"]
    return dues
