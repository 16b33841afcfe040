"""Rule → quick text (`to_quick`, for the builder) and back: `parse_quick(to_quick(rule))` is the rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from nurture_tui.errors import ValidationError
from nurture_tui.segments.quick import normalise, parse_quick, to_quick
from nurture_tui.segments.rules import Rule, parse_rule

from .test_property import activity_conditions, field_conditions, membership

FREE_TEXT = ("first_name", "last_name", "email", "company")


@pytest.mark.parametrize("text", [
    "industry=Software score>=50 stage=decision opened<14d",
    "acme", '"big co"', "\"it's\"", "country=US,DE", "country!=US", "country!=US,DE", "industry=", "industry!=",
    "company~acme", 'company~"a b"', "grade>=B", "employees<50", "created_at<30d", "created_at>90d",
    "created_at>2026-01-01", "updated_at=today", "mql_at=this_week", "custom.seats>=3", "custom.beta=true",
    "custom.plan=pro", "custom.ratio<=2.5", "custom.plan=pro,free", "#vip", "-#vip", "-industry=Retail",
    "tags!=", "opened", "clicked>=2<14d", "replied=0", "visited<=3", "opened>30d", "met<1w",
    'seg:"Hot leads"', "seq:onboarding", "campaign:Webinar", "mql:new", "mql:any", "account.named_account=true",
    "account.industry=software", "owner=alice,bob", "persona=economic_buyer", "score>=5.5", "", "-acme",
])
def test_canonical_quick_text_round_trips_exactly(text: str) -> None:
    assert to_quick(parse_quick(text)) == text


@pytest.mark.parametrize(("data", "text"), [
    ({"field": "industry", "in": ["Software"]}, "industry=Software"),  # `in [x]` reads back as `= x`
    ({"field": "score", "ge": 50}, "score>=50"),  # a lone condition is an `all` of one
    ({"all": [{"field": "industry", "eq": "big co"}, {"activity": "click", "at_least": 1}]},
     'industry="big co" clicked'),
    ({"field": "stage", "eq": "Decision"}, "stage=decision"),
    ({"activity": "open", "never": True}, "opened=0"),
    ({"none": [{"in_segment": "VIP"}]}, "-seg:VIP"),
])
def test_rules_built_elsewhere_get_quick_text(data: Any, text: str) -> None:
    assert to_quick(data) == text
    assert normalise(parse_quick(text)) == normalise(parse_rule(data))


@pytest.mark.parametrize("data", [
    {"any": [{"field": "score", "ge": 50}, {"field": "stage", "eq": "decision"}]},
    {"all": [{"all": [{"field": "score", "ge": 50}]}]},
    {"field": "score", "between": [20, 80]},
    {"field": "title", "regex": "^vp"},
    {"field": "company", "not_contains": "acme"},
    {"field": "created_at", "lt": "30d"},  # `created<30d` means "within the last 30 days"
    {"field": "created_at", "before": "2026-01-01"},
    {"field": "industry", "eq": "a,b"},  # a comma reads as a list
    {"field": "industry", "eq": ""},
    {"field": "custom.plan", "eq": "5"},  # quick values for custom fields are typed: "5" would become 5
    {"field": "tags", "op": "is_empty"},
    {"activity": "open", "template": "Welcome"},
    {"activity": ["open", "click"]},
    {"activity": "open", "within": "1w2d"},
    {"activity": "open", "last_performed": {"after": "2026-01-01"}},
    {"activity": "entered"},
    {"in_sequence": "onboarding", "status": "active"},
    {"in_campaign": "Webinar", "status": "Responded"},
    {"none": [{"field": "score", "ge": 1}, {"field": "score", "le": 0}]},
    {"all": [{"field": "score", "ge": 50}, {"any": [{"field": "email", "contains": "x"}]}]},
])
def test_rules_without_a_quick_form_give_none(data: Any) -> None:
    assert to_quick(data) is None


def _negated(node: dict[str, Any]) -> dict[str, Any]:
    return {"none": [node]}


leaf = st.one_of(field_conditions(), field_conditions(), activity_conditions(), membership)
terms = st.one_of(leaf, leaf.map(_negated),
                  st.sampled_from(["acme", "big co", "o'neil"]).map(
                      lambda v: {"any": [{"field": f, "contains": v} for f in FREE_TEXT]}))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(items=st.lists(terms, max_size=4))
def test_to_quick_round_trips_whenever_it_gives_text(items: list[dict[str, Any]]) -> None:
    try:
        rule = parse_rule({"all": items})
    except ValidationError:
        assume(False)
        return
    text = to_quick(rule)
    event("expressible" if text is not None else "no quick form")
    if text is not None:
        back = parse_quick(text)
        assert isinstance(back, Rule)
        assert normalise(back) == normalise(rule), (items, text)
