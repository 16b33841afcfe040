"""Every table of the domain model. Importing this module registers them all on
`SQLModel.metadata`, which Alembic and the Core hot paths use."""

from sqlmodel import SQLModel

from ._base import apply_core_defaults
from .activity import ACTIVITY_KINDS, Activity, ActivityPending, Campaign, CampaignMember, Opportunity
from .adaptive import AdaptiveDaily, AdaptiveDecision
from .compliance import Consent
from .engine import NodeCounter, WebhookOutbox
from .mail import MailFeedback, Outbox, Subscription, Suppression, Template, TemplateVersion
from .ops import Audit, Lease, Meta
from .people import GRADES, PERSONAS, STAGES, Account, Lead, LeadTag, RepGroup, User
from .reports import EmailStat, LeadCohort, LeadMilestone, LeadSend, SendCohort
from .salesforce import SfInfluence, SfLeadSync, SfOutbox, SyncError, SyncState
from .scoring import GradeProfile, Mql, ScoreEvent, ScoreRule
from .segments import Segment, SegmentMember
from .sequences import ENROLLMENT_STATUSES, Enrollment, Sequence, SequenceVersion

metadata = SQLModel.metadata
ALL_MODELS: list[type[SQLModel]] = [
    Account, Activity, Audit, Campaign, CampaignMember, Enrollment, GradeProfile, Lead, LeadTag, Lease,
    Meta, Mql, Opportunity, Outbox, RepGroup, ScoreEvent, ScoreRule, Segment, SegmentMember, Sequence,
    SequenceVersion, SfOutbox, Subscription, Suppression, SyncError, SyncState, Template, TemplateVersion,
    User,
    NodeCounter, WebhookOutbox, EmailStat, SfInfluence, LeadCohort, LeadMilestone, LeadSend, SendCohort,
    SfLeadSync, AdaptiveDecision, MailFeedback, Consent, ActivityPending, AdaptiveDaily,
]
apply_core_defaults(ALL_MODELS)

# The create_all hooks installing the rollup triggers and the Salesforce change capture:
from .. import rollups, sf_capture  # noqa: E402, F401

__all__ = [
    "ACTIVITY_KINDS",
    "ALL_MODELS",
    "ENROLLMENT_STATUSES",
    "GRADES",
    "PERSONAS",
    "STAGES",
    "Account",
    "Activity",
    "ActivityPending",
    "AdaptiveDaily",
    "AdaptiveDecision",
    "Audit",
    "Campaign",
    "CampaignMember",
    "Consent",
    "EmailStat",
    "Enrollment",
    "GradeProfile",
    "Lead",
    "LeadCohort",
    "LeadMilestone",
    "LeadSend",
    "LeadTag",
    "Lease",
    "MailFeedback",
    "Meta",
    "Mql",
    "NodeCounter",
    "Opportunity",
    "Outbox",
    "RepGroup",
    "ScoreEvent",
    "ScoreRule",
    "Segment",
    "SegmentMember",
    "SendCohort",
    "Sequence",
    "SequenceVersion",
    "SfInfluence",
    "SfLeadSync",
    "SfOutbox",
    "Subscription",
    "Suppression",
    "SyncError",
    "SyncState",
    "Template",
    "TemplateVersion",
    "User",
    "WebhookOutbox",
    "metadata",
]
