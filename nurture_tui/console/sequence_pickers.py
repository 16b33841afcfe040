"""What the sequence editor's node forms offer to pick from, by name, read in one go: templates, segments,
sequences, campaigns and their member statuses, owners (users, `group:` rep groups; `queue:NAME` is free),
the lead fields an `update_field` may set (with the custom keys seen in the data).

A picker is a help, not a fence: a campaign or tag that does not exist yet may be typed (the engine creates
it); what must exist (a template, a user, a segment) is checked by the draft's validation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..segments.fields import custom_keys
from ..sequences.model import UPDATABLE_LEAD_FIELDS, SequenceDef, iter_steps
from ..store.tables import campaign, campaign_member, rep_group, segment, sequence, template, user
from .session import ConsoleSession

#: Names listed per picker at most (the picker filters as you type; thousands of tags are not read whole).
MAX_NAMES = 500


def picker_names(session: ConsoleSession) -> dict[str, list[str]]:
    with session.read() as conn:
        def names(column: Any) -> list[str]:
            return [str(n) for n in conn.execute(
                select(column).distinct().where(column.isnot(None))
                .order_by(func.lower(column)).limit(MAX_NAMES)).scalars() if n]

        users = names(user.c.username)
        return {
            "templates": names(template.c.name),
            "segments": names(segment.c.name),
            "sequences": names(sequence.c.name),
            "campaigns": names(campaign.c.name),
            "statuses": sorted({"Sent", "Responded", *names(campaign_member.c.status)}, key=str.lower),
            "owners": users + [f"group:{g}" for g in names(rep_group.c.name)],
            "fields": [*UPDATABLE_LEAD_FIELDS, *(f"custom.{k}" for k in custom_keys(conn))],
        }


def template_order(names: list[str], program: SequenceDef | None) -> list[str]:
    """The send form's templates in the order its picker lists them (and breaks a search's ties): the
    program's own inline templates first, as the file holds them, then the others; the templates the program
    sends already last (a nurture program rarely sends one email twice), so the next one is mostly on top."""
    if program is None:
        return list(names)
    inline = [t.name for t in program.templates]
    ordered = inline + [n for n in names if n not in set(inline)]
    sent = {s.send.template for s in iter_steps(program.steps) if s.send is not None}
    return [n for n in ordered if n not in sent] + [n for n in ordered if n in sent]
