"""A Salesforce org on loopback that unchanged simple-salesforce talks to over real HTTPS.

`Emulator(...).start()` serves SOAP/OAuth login, REST (query, sObjects, describe, limits, updated/deleted,
Collections, composite) and Bulk API 2.0 with fault injection; `seed_org()` fills it with a demo org.
"""

from .faults import KINDS as FAULT_KINDS
from .seed import SeedSummary, seed_org
from .server import Emulator
from .store import Org, OrgError

__all__ = ["FAULT_KINDS", "Emulator", "Org", "OrgError", "SeedSummary", "seed_org"]
