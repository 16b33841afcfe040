"""The `/` quick filter syntax."""

from __future__ import annotations

import pytest

from nurture_tui.errors import ValidationError
from nurture_tui.segments.quick import parse_quick
from nurture_tui.segments.rules import parse_rule, render

FREE_TEXT = ("first_name", "last_name", "email", "company")


def test_issue_example() -> None:
    rule = parse_quick("industry=Software score>=50 stage:decision opened<14d")
    assert rule == parse_rule({"all": [
        {"field": "industry", "eq": "Software"}, {"field": "score", "ge": 50}, {"field": "stage", "eq": "decision"},
        {"activity": "open", "within": "14d"}]})
    assert render(rule) == "industry = Software AND score ≥ 50 AND stage = decision AND opened any email within 14d"


@pytest.mark.parametrize(("text", "data"), [
    ("acme", {"any": [{"field": f, "contains": "acme"} for f in FREE_TEXT]}),
    ('"big co"', {"any": [{"field": f, "contains": "big co"} for f in FREE_TEXT]}),
    ("country=US,DE", {"field": "country", "in": ["US", "DE"]}),
    ("country!=US", {"field": "country", "ne": "US"}),
    ("country!=US,DE", {"field": "country", "not_in": ["US", "DE"]}),
    ("industry=", {"field": "industry", "op": "is_empty"}),
    ("industry!=", {"field": "industry", "op": "not_empty"}),
    ("company~acme", {"field": "company", "contains": "acme"}),
    ("grade>=B", {"field": "grade", "ge": "B"}),
    ("employees<50", {"field": "employees", "lt": 50}),
    ("created<30d", {"field": "created_at", "within_last": "30d"}),
    ("created>90d", {"field": "created_at", "older_than": "90d"}),
    ("created>2026-01-01", {"field": "created_at", "gt": "2026-01-01"}),
    ("updated=today", {"field": "updated_at", "op": "today"}),
    ("mql=this_week", {"field": "mql_at", "op": "this_week"}),
    ("custom.seats>=3", {"field": "custom.seats", "ge": 3}),
    ("custom.beta=true", {"field": "custom.beta", "eq": True}),
    ("custom.plan=pro", {"field": "custom.plan", "eq": "pro"}),
    ("account.industry=Software", {"field": "account.industry", "eq": "Software"}),
    ("owner:alice", {"field": "owner", "eq": "alice"}),
    ("#vip", {"field": "tags", "contains": "vip"}),
    ("tag:vip", {"field": "tags", "contains": "vip"}),
    ("-#vip", {"none": [{"field": "tags", "contains": "vip"}]}),
    ("!stage:decision", {"none": [{"field": "stage", "eq": "decision"}]}),
    ("opened", {"activity": "open"}),
    ("!opened<30d", {"none": [{"activity": "open", "within": "30d"}]}),
    ("clicked>=2<14d", {"activity": "click", "at_least": 2, "within": "14d"}),
    ("replied=0", {"activity": "reply", "exactly": 0}),
    ("visited<=3", {"activity": "page_view", "at_most": 3}),
    ("opened>30d", {"activity": "open", "last_performed": {"before": "30d"}}),
    ("seg:Hot", {"in_segment": "Hot"}),
    ("seq:onboarding", {"in_sequence": "onboarding"}),
    ("campaign:Webinar", {"in_campaign": "Webinar"}),
    ("mql:new", {"mql_status": "new"}),
])
def test_terms(text: str, data: dict[str, object]) -> None:
    assert parse_quick(text) == parse_rule({"all": [data]})


def test_empty_filter_is_everyone() -> None:
    assert render(parse_quick("  ")) == "everyone"


@pytest.mark.parametrize(("text", "message"), [
    ("stage:decision score>=abc", "filter term 2 'score>=abc': expected a number, got \"abc\""),
    ("colour=red", "filter term 1 'colour=red': unknown field 'colour'"),
    ("stage:won", "filter term 1 'stage:won': expected one of awareness"),
    ("created~2026", "filter term 1 'created~2026': use <, <=, >, >= with dates"),
    ("clicked>=2>30d", "filter term 1 'clicked>=2>30d': a count cannot be combined"),
    ('company="acme', "filter: No closing quotation"),
])
def test_errors_name_the_term(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_quick(text)
    assert str(info.value).startswith(message), str(info.value)
