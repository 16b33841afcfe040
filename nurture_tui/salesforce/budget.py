"""The API budget: pushing stops once the org's daily API usage reaches `api_budget_share` of its allocation.

Usage comes from `GET limits/` at the start of a sync and then from every `Sforce-Limit-Info` header
simple-salesforce parses (`sf.api_usage`), plus our own count of calls that do not report it (Bulk 2.0).
Pulls are not stopped — staying current is what keeps pushes from overwriting newer Salesforce data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ApiBudget:
    share: float
    max_calls: int = 0
    used: int = 0

    @classmethod
    def from_limits(cls, limits: dict[str, Any], share: float) -> ApiBudget:
        daily = limits.get("DailyApiRequests") or {}
        max_calls = int(daily.get("Max") or 0)
        used = max_calls - int(daily.get("Remaining") or 0)
        return cls(share=share, max_calls=max_calls, used=used)

    @property
    def allowed(self) -> int:
        return int(self.max_calls * self.share)

    @property
    def remaining(self) -> int:
        return max(0, self.allowed - self.used)

    @property
    def exhausted(self) -> bool:
        return self.max_calls > 0 and self.used >= self.allowed

    def spend(self, calls: int = 1) -> None:
        self.used += calls

    def observe(self, api_usage: dict[str, Any] | None) -> None:
        """Take the org's own figure from a parsed Sforce-Limit-Info header when it is newer."""
        usage = (api_usage or {}).get("api-usage")
        if usage is not None:
            self.used = max(self.used, int(usage.used))
            if usage.total:
                self.max_calls = int(usage.total)
