"""Fixtures for the TUI tests: a small seeded workspace (fixed clock, deterministic data), an app factory,
and helpers that wait on conditions instead of sleeping."""

from __future__ import annotations

import os

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")  # before Textual is imported: it reads this at import
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from textual.pilot import Pilot

from nurture_tui.clock import VirtualClock
from nurture_tui.config import Settings
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.store import tables as t
from nurture_tui.store.engine import make_engine
from nurture_tui.store.models import GRADES, STAGES, metadata
from nurture_tui.workspace import Workspace

T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
N_LEADS = 120
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka")
COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES")
FIRST = ("Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivan", "Jo")
LAST = ("Archer", "Baker", "Cole", "Diaz", "Evans", "Fox", "Gray", "Hill", "Ito", "Jones")

SEQUENCE = {
    "name": "welcome",
    "description": "Welcome series",
    "templates": [],
    "steps": [
        {"id": "hello", "send": {"template": "welcome-1"}},
        {"id": "pause", "wait": {"duration": "2d"}},
        {"id": "engaged", "wait_for": {"events": [{"kind": "click"}], "window": "5d"},
         "yes": [{"id": "hot", "action": {"type": "adjust_score", "points": 10}}],
         "no": [{"id": "nudge", "send": {"template": "welcome-2"}}]},
    ],
}


def seed(ws: Workspace, now: datetime = T0, n_leads: int = N_LEADS) -> dict[str, Any]:
    """Deterministic rows in every table the screens read. Returns a few ids the tests use."""
    rnd = random.Random(7)
    with ws.engine.begin() as conn:
        conn.execute(insert(t.meta), [{"key": "score_epoch", "value": (now - timedelta(days=10)).isoformat()}])
        conn.execute(insert(t.user), [
            {"id": 1, "username": "alice", "name": "Alice Admin", "role": "admin", "created_at": now},
            {"id": 2, "username": "rita", "name": "Rita Rep", "role": "rep", "created_at": now},
            {"id": 3, "username": "olaf", "name": "Olaf Operator", "role": "operator", "created_at": now},
        ])
        leads = []
        for i in range(1, n_leads + 1):
            grade_rank = rnd.randrange(len(GRADES))
            leads.append({
                "id": i, "email": f"lead{i:04d}@{COMPANIES[i % len(COMPANIES)].lower()}.example",
                "first_name": FIRST[i % 10], "last_name": LAST[(i * 7) % 10],
                "company": COMPANIES[i % len(COMPANIES)], "country": COUNTRIES[i % len(COUNTRIES)],
                "stage": STAGES[i % 3], "score": float((i * 37) % 150), "grade": GRADES[grade_rank],
                "grade_rank": grade_rank, "owner_id": 2 if i % 4 == 0 else 1, "persona": "practitioner",
                "last_activity_at": now - timedelta(hours=i), "created_at": now - timedelta(days=30),
                "updated_at": now, "sf_id": f"00Q{i:015d}" if i % 3 == 0 else None, "sf_type": "Lead",
            })
        conn.execute(insert(t.lead), leads)
        acts = []
        messages = []  # each send is an outbox row its opens and clicks point at (reports count per send cohort)
        for day in range(14):
            for j in range(day % 5 + 3):
                lead_id = (day * 11 + j) % n_leads + 1
                at = now - timedelta(days=day, hours=j + 1)
                oid = len(messages) + 1
                messages.append({"id": oid, "idempotency_key": f"seed-{oid}", "lead_id": lead_id,
                                 "to_email": f"lead{lead_id:04d}@example.com", "status": "sent", "created_at": at,
                                 "sent_at": at})
                acts.append({"lead_id": lead_id, "kind": "sent", "at": at, "outbox_id": oid,
                             "meta": {"template": "welcome-1"}})
                if j % 2 == 0:
                    acts.append({"lead_id": lead_id, "kind": "open", "at": at + timedelta(minutes=5), "outbox_id": oid,
                                 "meta": {}})
                if j % 3 == 0:
                    acts.append({"lead_id": lead_id, "kind": "click", "at": at + timedelta(minutes=9),
                                 "url": "https://example.com/pricing", "outbox_id": oid, "meta": {}})
        conn.execute(insert(t.outbox), messages)
        conn.execute(insert(t.activity), acts)
        conn.execute(insert(t.score_event), [
            {"lead_id": 5, "at": now - timedelta(days=d), "points": 5.0 + d, "reason": "click"} for d in range(6, 0, -1)
        ])
        definition = SequenceDef.model_validate(SEQUENCE).to_json()
        conn.execute(insert(t.sequence), [{"id": 1, "name": "welcome", "description": "Welcome series",
                                           "status": "active", "draft": definition, "current_version_id": 1,
                                           "created_at": now, "updated_at": now}])
        conn.execute(insert(t.sequence_version), [{"id": 1, "sequence_id": 1, "number": 1, "definition": definition,
                                                   "checksum": "seed", "published_at": now, "published_by": "alice"}])
        conn.execute(insert(t.enrollment), [
            {"lead_id": i, "sequence_id": 1, "version_id": 1, "node_id": ("hello", "pause", "engaged")[i % 3],
             "status": "waiting" if i % 3 else "active", "due_at": now + timedelta(minutes=10 * i),
             "entered_at": now - timedelta(days=2), "node_entered_at": now - timedelta(days=1)}
            for i in range(1, 31)
        ])
        conn.execute(insert(t.template), [
            {"name": "welcome-1", "subject": "Welcome, {{ lead.first_name }}", "html": "<p>Hi {{ lead.first_name }},"
             " thanks for joining.</p>", "text": None, "category": "marketing", "stage": "awareness", "version": 1,
             "created_at": now, "updated_at": now},
            {"name": "welcome-2", "subject": "Still there?", "html": "<p>A nudge for {{ lead.company }}.</p>",
             "text": "A nudge for {{ lead.company }}.", "category": "marketing", "stage": "awareness", "version": 1,
             "created_at": now, "updated_at": now},
        ])
        conn.execute(insert(t.segment), [
            {"name": "Decision makers", "description": "late funnel", "created_at": now, "updated_at": now,
             "rule": {"all": [{"field": "stage", "op": "eq", "value": "decision"}]}, "cached_count": 40},
        ])
        conn.execute(insert(t.mql), [
            {"id": 1, "lead_id": 8, "status": "new", "rep_id": 2, "score": 120.0, "grade": "A",
             "why": {"rule": "score >= 100 and grade >= B-", "score": 120.0, "grade": "A", "assigned": "owner"},
             "created_at": now - timedelta(hours=30)},
            {"id": 2, "lead_id": 9, "status": "new", "rep_id": 1, "score": 105.0, "grade": "B",
             "why": {"rule": "score >= 100 and grade >= B-", "score": 105.0, "grade": "B", "assigned": "round robin"},
             "created_at": now - timedelta(hours=2)},
        ])
        conn.execute(insert(t.sync_state), [
            {"sobject": "Lead", "watermark": now - timedelta(minutes=5), "last_run_at": now - timedelta(minutes=2),
             "status": "idle", "detail": {}},
        ])
        conn.execute(insert(t.audit), [
            {"at": now - timedelta(minutes=m), "user": "alice", "action": "segment.save", "entity": "segment",
             "entity_id": "Decision makers", "before": None, "after": {"n": m}} for m in range(5)
        ])
    return {"lead_with_history": 5, "rep_lead": 8}


@pytest.fixture
def seeded_ws(tmp_path: Path) -> Iterator[Workspace]:
    """A seeded SQLite workspace with a frozen clock at T0 and an admin at the keyboard."""
    url = f"sqlite:///{tmp_path / 'tui.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    settings = Settings(db_url=url, data_dir=tmp_path / "data", user={"name": "alice", "role": "admin"})
    ws = Workspace(settings=settings, engine=engine, clock=VirtualClock(T0))
    seed(ws)
    yield ws
    ws.close()


def make_test_app(ws: Workspace, **kw: Any) -> Any:
    from nurture_tui.tui.app import make_app

    kw.setdefault("background", False)
    kw.setdefault("status_interval", 60.0)
    return make_app(ws, **kw)


async def wait_for(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Pump the app until `cond()` holds (never a bare sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


async def open_sequence_editor(pilot: Pilot[Any], name: str | None) -> Any:
    """From a list screen: push the sequence editor on `name` (None: a blank program) and wait for its first
    check."""
    from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen

    app = pilot.app
    await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
    await app.push_screen(SequenceEditorScreen(name))
    await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and app.screen.draft is not None)
    editor: Any = app.screen
    await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)
    return editor
