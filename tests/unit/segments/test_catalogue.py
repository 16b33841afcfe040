"""The builder's field catalogue and value choices, from bounded samples of the data (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from nurture_tui.errors import ValidationError
from nurture_tui.segments import fields
from nurture_tui.segments.fields import FieldChoice, catalogue, custom_keys, value_choices
from nurture_tui.segments.rules import parse_rule
from nurture_tui.store.engine import write_tx
from nurture_tui.store.models.activity import ACTIVITY_KINDS
from nurture_tui.store.models.people import GRADES, STAGES
from nurture_tui.store.tables import account, campaign, campaign_member, lead, lead_tag, segment, sequence, user
from nurture_tui.workspace import Workspace


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(user), [{"username": u, "email": f"{u}@co.io"} for u in ("zed", "alice", "bob")])
        conn.execute(insert(account), [{"name": "Acme", "industry": "Software", "custom": {}},
                                       {"name": "Globex", "industry": "retail", "custom": {}}])
        rows = []
        for i in range(30):
            rows.append({"email": f"l{i}@x.io", "country": ["Germany", "germany", "US", "France", ""][i % 5],
                         "industry": "Software" if i % 3 else None, "owner_id": 2 if i % 2 else None,
                         "account_id": 1 + i % 2,
                         "custom": {"plan": ["pro", "free", "pro"][i % 3], "seats": i % 4, "beta": i % 2 == 0,
                                    **({"mixed": "x" if i % 2 else 3} if i < 10 else {}),
                                    **({"old_key": 1} if i == 0 else {}), "bad key!": 1}})
        conn.execute(insert(lead), rows)
        conn.execute(insert(lead_tag), [{"lead_id": i, "tag": t} for i in range(1, 31)
                                        for t in (["vip"] if i % 2 else ["VIP", "partner"])])
        conn.execute(insert(segment), [{"name": "Hot", "rule": {"all": []}}, {"name": "cold", "rule": {"all": []}}])
        conn.execute(insert(sequence), [{"name": "welcome", "draft": {}}])
        cid = conn.execute(insert(campaign).values(name="Webinar").returning(campaign.c.id)).scalar_one()
        conn.execute(insert(campaign_member), [{"campaign_id": cid, "lead_id": 1, "status": "Responded"},
                                               {"campaign_id": cid, "lead_id": 2, "status": "Sent"}])
    return workspace


def _by_name(choices: list[FieldChoice]) -> dict[tuple[str, str], FieldChoice]:
    return {(c.key, c.name): c for c in choices}


def test_catalogue_covers_every_subject_of_the_rule_language(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        cat = catalogue(conn)
    got = _by_name(cat)
    assert len(got) == len(cat)
    # Every field the language knows (lead, account, derived) is offered, with its operators.
    assert {n for k, n in got if k == "field" and not n.startswith("custom.")} == set(fields.FIELDS)
    assert got["field", "industry"] == FieldChoice("industry", "field", "string", "lead",
                                                   fields.OPS_BY_KIND["string"])
    assert got["field", "account.named_account"].choices == ("true", "false")
    assert got["field", "stage"].choices == STAGES and got["field", "grade"].choices == GRADES
    assert got["field", "owner"].choices == ("alice", "bob", "zed")
    assert [c.group for c in cat][:3] == ["lead", "lead", "lead"]
    # Custom keys seen in the data, most frequent first, typed; keys rules cannot name are left out.
    custom = [c for c in cat if c.group == "custom"]
    assert [(c.name, c.value_type) for c in custom] == [
        ("custom.beta", "bool"), ("custom.plan", "text"), ("custom.seats", "number"), ("custom.mixed", "mixed"),
        ("custom.old_key", "number")]
    assert "lt" in got["field", "custom.seats"].ops and "contains" not in got["field", "custom.seats"].ops
    assert "contains" in got["field", "custom.plan"].ops and "lt" not in got["field", "custom.plan"].ops
    # Behaviour kinds and memberships.
    assert [c.name for c in cat if c.key == "activity"] == list(ACTIVITY_KINDS)
    assert got["activity", "open"].ops == fields.BEHAVIOUR_KEYS
    assert got["in_segment", "in_segment"].choices == ("cold", "Hot")
    assert got["in_sequence", "in_sequence"].choices == ("welcome",)
    assert got["in_campaign", "in_campaign"].statuses == ("Responded", "Sent")
    assert got["mql_status", "mql_status"].choices[0] == "any"
    # Every operator offered for a field parses.
    for c in cat:
        if c.key == "field":
            for op in c.ops:
                if op in fields.NO_VALUE_OPS:
                    parse_rule({"field": c.name, "op": op})


def test_custom_keys_read_only_the_most_recent_leads(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        assert "old_key" in custom_keys(conn)
        assert "old_key" not in custom_keys(conn, sample=29)  # lead 1 is the oldest
        assert list(custom_keys(conn, sample=5)) == ["beta", "plan", "seats"]


def test_value_choices_by_frequency_case_folded_and_bounded(ws: Workspace) -> None:
    with ws.engine.connect() as conn:
        assert value_choices(conn, "country") == ["Germany", "France", "US"]  # Germany 6 + germany 6 (a tie)
        assert value_choices(conn, "country", limit=1) == ["Germany"]
        assert value_choices(conn, "industry") == ["Software"]
        assert value_choices(conn, "account.industry") == ["retail", "Software"]
        assert value_choices(conn, "tags") == ["VIP", "partner"]  # vip 15 + VIP 15
        assert value_choices(conn, "owner") == ["alice", "bob", "zed"]  # alice owns leads; then the others
        assert value_choices(conn, "stage") == list(STAGES)
        assert value_choices(conn, "persona")[0] == "economic_buyer"
        assert value_choices(conn, "grade") == list(GRADES)
        assert value_choices(conn, "opted_out") == [True, False]
        assert value_choices(conn, "custom.plan") == ["pro", "free"]
        assert value_choices(conn, "custom.seats") == [0, 1, 2, 3]
        assert value_choices(conn, "custom.mixed") == ["x", 3]
        assert value_choices(conn, "score") == [] and value_choices(conn, "created") == []
        with pytest.raises(ValidationError, match="unknown field 'nope'"):
            value_choices(conn, "nope")


def test_empty_workspace(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn:
        assert custom_keys(conn) == {}
        assert value_choices(conn, "country") == [] and value_choices(conn, "owner") == []
        assert len(catalogue(conn)) == len(fields.FIELDS) + len(ACTIVITY_KINDS) + 5  # + the memberships
