"""`action` node types. Each runs inside the batch transaction; Salesforce-facing changes are queued
through `salesforce.outbox` in the same transaction, webhooks through the signed webhook outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ..activity import ActivityEvent
from ..errors import ValidationError
from ..salesforce import outbox as sf
from ..scoring.grading import regrade
from ..scoring.service import adjust_score as add_points
from ..sequences.model import UPDATABLE_LEAD_FIELDS, ActionSpec, Node
from ..store.tables import campaign, campaign_member, lead, lead_tag, outbox, rep_group, user, webhook_outbox
from .context import Item, StepContext
from .enroll import enroll_lead
from .plans import Plan

#: Lead columns an `update_field` action may set; `custom.<key>` goes into `lead.custom`.
LEAD_FIELDS = frozenset(UPDATABLE_LEAD_FIELDS)
STAGES = ("awareness", "consideration", "decision", "customer")

#: Action types that change what segment rules see about the lead (so entry is re-checked after the batch).
CHANGES_LEAD = frozenset({"update_field", "set_stage", "adjust_score", "add_to_campaign", "assign_owner",
                          "add_tag", "remove_tag"})

Action = Callable[[StepContext, Plan, Node, ActionSpec, Item], None]


def _where(node: Node, key: str) -> str:
    return f"{node.path}.action.{key}"


def update_field(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    name = spec.field or ""
    if not name:
        raise ValidationError(_where(node, "field"), "update_field needs a field")
    if name in LEAD_FIELDS:
        ctx.conn.execute(update(lead).where(lead.c.id == it.lead_id).values({name: spec.value, "updated_at": ctx.now}))
        if name == "stage":
            sf.enqueue_field_update(ctx.conn, it.lead_id, {"stage": spec.value}, ctx.now)
    else:
        key = name.removeprefix("custom.")
        custom = ctx.conn.execute(select(lead.c.custom).where(lead.c.id == it.lead_id)).scalar_one_or_none() or {}
        ctx.conn.execute(update(lead).where(lead.c.id == it.lead_id)
                         .values(custom={**custom, key: spec.value}, updated_at=ctx.now))
    regrade(ctx.conn, [it.lead_id], ctx.now, ctx.settings)  # fit grade follows field changes


def set_stage(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    stage = str(spec.value or "")
    if stage not in STAGES:
        raise ValidationError(_where(node, "value"), f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    before = ctx.conn.execute(select(lead.c.stage).where(lead.c.id == it.lead_id)).scalar_one_or_none()
    if before == stage:
        return
    ctx.conn.execute(update(lead).where(lead.c.id == it.lead_id).values(stage=stage, updated_at=ctx.now))
    ctx.activities.append(ActivityEvent(it.lead_id, "stage_change", ctx.now, sequence_id=it.sequence_id,
                                         version_id=it.version_id, node_id=node.id,
                                         meta={"from": before, "to": stage}))
    sf.enqueue_field_update(ctx.conn, it.lead_id, {"stage": stage}, ctx.now)


def adjust_score(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    points = spec.points if spec.points is not None else spec.value
    if not isinstance(points, (int, float)):
        raise ValidationError(_where(node, "points"), "adjust_score needs a number of points")
    add_points(ctx.conn, it.lead_id, float(points), f"sequence {plan.sequence_name}: {node.id}",
               ctx.now, ctx.settings)


def add_to_campaign(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    name = spec.campaign or ""
    if not name:
        raise ValidationError(_where(node, "campaign"), "add_to_campaign needs a campaign")
    status = spec.status or "Sent"
    cid = ctx.conn.execute(select(campaign.c.id).where(campaign.c.name == name)).scalar_one_or_none()
    if cid is None:
        cid = ctx.conn.execute(insert(campaign).values(name=name, is_active=True)).inserted_primary_key[0]  # type: ignore[index]
    member = ctx.conn.execute(select(campaign_member.c.id).where(
        campaign_member.c.campaign_id == cid, campaign_member.c.lead_id == it.lead_id)).scalar_one_or_none()
    if member is None:
        ctx.conn.execute(insert(campaign_member).values(campaign_id=cid, lead_id=it.lead_id, status=status,
                                                        created_at=ctx.now))
    else:
        ctx.conn.execute(update(campaign_member).where(campaign_member.c.id == member).values(status=status))
    sf.enqueue_campaign_member(ctx.conn, it.lead_id, name, status, ctx.now)


def assign_owner(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    target = spec.owner or ""
    conn = ctx.conn
    owner_id: int | None
    if target.startswith("group:"):
        group = conn.execute(select(rep_group).where(rep_group.c.name == target[6:])).first()
        if group is None or not group.member_ids:
            raise ValidationError(_where(node, "owner"), f"no rep group {target[6:]!r} with members")
        owner_id = int(group.member_ids[group.rr_cursor % len(group.member_ids)])
        conn.execute(update(rep_group).where(rep_group.c.id == group.id).values(rr_cursor=rep_group.c.rr_cursor + 1))
    elif target.startswith("queue:"):
        owner_id = None
        custom = conn.execute(select(lead.c.custom).where(lead.c.id == it.lead_id)).scalar_one_or_none() or {}
        conn.execute(update(lead).where(lead.c.id == it.lead_id)
                     .values(owner_id=None, custom={**custom, "queue": target[6:]}, updated_at=ctx.now))
        return
    else:
        owner_id = conn.execute(select(user.c.id).where(user.c.username == target)).scalar_one_or_none()
        if owner_id is None:
            raise ValidationError(_where(node, "owner"), f"no user {target!r}")
    conn.execute(update(lead).where(lead.c.id == it.lead_id).values(owner_id=owner_id, updated_at=ctx.now))
    sf.enqueue_field_update(conn, it.lead_id, {"owner": owner_id}, ctx.now)


def create_task(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    subject = spec.subject or f"Follow up ({plan.sequence_name})"
    owner = ctx.conn.execute(select(lead.c.owner_id).where(lead.c.id == it.lead_id)).scalar_one_or_none()
    sf.enqueue_task(ctx.conn, it.lead_id, subject, spec.body or "", owner, ctx.now)


def notify_rep(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    """An internal email to the lead's owner, queued in the outbox (transactional: never suppressed)."""
    row = ctx.conn.execute(
        select(lead.c.email, lead.c.first_name, lead.c.last_name, lead.c.company, user.c.email.label("rep"))
        .select_from(lead.outerjoin(user, user.c.id == lead.c.owner_id))
        .where(lead.c.id == it.lead_id)
    ).first()
    if row is None or not row.rep:
        return  # no owner with an email: nothing to notify
    who = " ".join(p for p in (row.first_name, row.last_name) if p) or row.email
    subject = spec.subject or f"Nurture: {who} ({row.company or 'no company'}) reached {node.id}"
    body = spec.body or f"{who} <{row.email}> reached step {node.id} of {plan.sequence_name}."
    ctx.conn.execute(insert(outbox).values(
        idempotency_key=f"e{it.id}:{node.id}:{it.steps}:notify", lead_id=it.lead_id, enrollment_id=it.id,
        sequence_id=it.sequence_id, node_id=node.id, category="transactional", to_email=row.rep,
        subject=subject[:500], html="", text=body, headers={}, status="queued", attempts=0,
        next_try_at=ctx.now, created_at=ctx.now,
    ))


def add_tag(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    tag = _tag(node, spec)
    exists = ctx.conn.execute(select(func.count()).select_from(lead_tag).where(
        lead_tag.c.lead_id == it.lead_id, lead_tag.c.tag == tag)).scalar_one()
    if not exists:
        ctx.conn.execute(insert(lead_tag).values(lead_id=it.lead_id, tag=tag))


def remove_tag(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    ctx.conn.execute(lead_tag.delete().where(lead_tag.c.lead_id == it.lead_id, lead_tag.c.tag == _tag(node, spec)))


def _tag(node: Node, spec: ActionSpec) -> str:
    tag = spec.tag or (str(spec.value) if spec.value else "")
    if not tag:
        raise ValidationError(_where(node, "tag"), "a tag is required")
    return tag[:60]


def enroll(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    name = spec.sequence or ""
    if not name:
        raise ValidationError(_where(node, "sequence"), "enroll needs a sequence")
    enroll_lead(ctx.conn, it.lead_id, name, ctx.now, source=f"sequence:{plan.sequence_name}")


def webhook(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    if not spec.url or not spec.url.startswith(("http://", "https://")):
        raise ValidationError(_where(node, "url"), "webhook needs an http(s) url")
    email = ctx.conn.execute(select(lead.c.email).where(lead.c.id == it.lead_id)).scalar_one_or_none()
    body: dict[str, Any] = {
        "event": "sequence.step", "lead_id": it.lead_id, "email": email, "sequence": plan.sequence_name,
        "version_id": it.version_id, "node": node.id, "at": ctx.now.isoformat(),
    }
    if spec.value is not None:
        body["data"] = spec.value
    ctx.conn.execute(insert(webhook_outbox).values(
        idempotency_key=f"e{it.id}:{node.id}:{it.steps}", lead_id=it.lead_id, enrollment_id=it.id,
        url=spec.url, body=body, status="pending", attempts=0, next_try_at=ctx.now, created_at=ctx.now,
    ))


ACTIONS: dict[str, Action] = {
    "update_field": update_field, "set_stage": set_stage, "adjust_score": adjust_score,
    "add_to_campaign": add_to_campaign, "assign_owner": assign_owner, "create_task": create_task,
    "notify_rep": notify_rep, "add_tag": add_tag, "remove_tag": remove_tag, "enroll": enroll,
    "webhook": webhook,
}


def run(ctx: StepContext, plan: Plan, node: Node, spec: ActionSpec, it: Item) -> None:
    ACTIONS[spec.type](ctx, plan, node, spec, it)


__all__ = ["ACTIONS", "Connection", "run"]
