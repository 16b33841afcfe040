"""Core `Table` objects for every model, for SQLAlchemy Core hot paths:
`from nurture_tui.store.tables import lead, activity`."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlmodel import SQLModel

from . import models as m


def _t(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


account = _t(m.Account)
adaptive_daily = _t(m.AdaptiveDaily)
adaptive_decision = _t(m.AdaptiveDecision)
activity = _t(m.Activity)
activity_pending = _t(m.ActivityPending)
audit = _t(m.Audit)
campaign = _t(m.Campaign)
campaign_member = _t(m.CampaignMember)
consent = _t(m.Consent)
email_stat = _t(m.EmailStat)
enrollment = _t(m.Enrollment)
grade_profile = _t(m.GradeProfile)
lead = _t(m.Lead)
lead_cohort = _t(m.LeadCohort)
lead_milestone = _t(m.LeadMilestone)
lead_send = _t(m.LeadSend)
lead_tag = _t(m.LeadTag)
lease = _t(m.Lease)
meta = _t(m.Meta)
mql = _t(m.Mql)
node_counter = _t(m.NodeCounter)
opportunity = _t(m.Opportunity)
outbox = _t(m.Outbox)
rep_group = _t(m.RepGroup)
score_event = _t(m.ScoreEvent)
score_rule = _t(m.ScoreRule)
segment = _t(m.Segment)
segment_member = _t(m.SegmentMember)
send_cohort = _t(m.SendCohort)
sequence = _t(m.Sequence)
sequence_version = _t(m.SequenceVersion)
sf_influence = _t(m.SfInfluence)
sf_lead_sync = _t(m.SfLeadSync)
sf_outbox = _t(m.SfOutbox)
subscription = _t(m.Subscription)
suppression = _t(m.Suppression)
mail_feedback = _t(m.MailFeedback)
sync_error = _t(m.SyncError)
sync_state = _t(m.SyncState)
template = _t(m.Template)
template_version = _t(m.TemplateVersion)
user = _t(m.User)
webhook_outbox = _t(m.WebhookOutbox)
