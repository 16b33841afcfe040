"""Telling a person's open or click from a mail scanner's prefetch.

Security gateways (Barracuda, Mimecast, Proofpoint, Microsoft Safe Links …) and link checkers fetch every
image and link of a message seconds after delivery. Such hits are still recorded (flag `bot`), but
they trigger no `wait_for`, no score and no goal.
"""

from __future__ import annotations

from datetime import datetime

#: Lower-case substrings of User-Agent headers sent by scanners, prefetchers and scripts.
SCANNER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "messagelabs", "symantec", "trendmicro", "trend micro", "forcepoint",
    "fortiguard", "sophos", "ironport", "safelinks", "safe links", "linkscanner", "urldefense", "bingpreview",
    "googlebot", "bot/", "bot;", "crawler", "spider", "scanner", "headlesschrome", "phantomjs", "python-requests",
    "python-urllib", "curl/", "wget/", "go-http-client", "java/", "libwww-perl", "okhttp", "apache-httpclient",
)


def bot_reason(user_agent: str | None, sent_at: datetime | None, now: datetime, *, window_seconds: float,
               method: str = "GET", in_flight: bool = False) -> str | None:
    """Why this hit looks automated (None = a person). `in_flight`: the message's delivery is not even
    recorded yet (a gateway fetching during the SMTP transaction)."""
    ua = (user_agent or "").lower()
    if not ua.strip():
        return "no user agent"
    if method == "HEAD":
        return "HEAD request (link check)"
    for marker in SCANNER_AGENTS:
        if marker in ua:
            return f"scanner user agent ({marker.strip('/;')})"
    if in_flight:
        return "before delivery was recorded"
    if sent_at is not None and (now - sent_at).total_seconds() < window_seconds:
        return f"within {window_seconds:g}s of delivery"
    return None
