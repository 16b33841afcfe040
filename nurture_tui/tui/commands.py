"""Command-palette providers: go to any screen, run any action of the current screen (generated from its
live bindings), and open a lead by email or name."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .modes import MODES

if TYPE_CHECKING:
    from .app import NurtureApp


class NavigationProvider(Provider):
    """`go: Leads` and friends."""

    def _commands(self) -> list[tuple[str, str, Any]]:
        app: NurtureApp = self.app  # type: ignore[assignment]
        return [(f"go: {m.title}", f"{m.help} (key {m.key})", partial(app.switch_mode, m.name)) for m in MODES]

    async def discover(self) -> Hits:
        for text, help_text, callback in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class ActionProvider(Provider):
    """Every enabled binding of the screen under the palette, as `<screen>: <action>`."""

    def _commands(self, *, shown_only: bool = False) -> list[tuple[str, str, Any]]:
        screen = self.screen
        title = getattr(screen, "TITLE", "") or "app"
        out = []
        seen = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not active.enabled or not b.description or (id(active.node), b.action) in seen:
                continue
            if shown_only and not b.show:  # discovery lists the footer's keys; search finds them all
                continue
            seen.add((id(active.node), b.action))
            if b.action.startswith("app.switch_mode") or b.action in ("command_palette", "quit"):
                continue
            scope = "app" if active.node is self.app else title.lower()
            key = self.app.get_key_display(b)
            out.append((f"{scope}: {b.description.lower()}", f"key {key}",
                        partial(self.app.run_action, b.action, active.node)))
        return out

    async def discover(self) -> Hits:
        for text, help_text, callback in self._commands(shown_only=True):
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class LeadProvider(Provider):
    """`lead: jane@acme.com — Jane Doe`: type three characters of an email, name or company."""

    def _open(self, lead_id: int) -> None:
        from .screens.lead_detail import LeadDetailScreen

        self.app.push_screen(LeadDetailScreen(lead_id))

    async def search(self, query: str) -> Hits:
        query = query.strip()
        if len(query) < 3:
            return
        matcher = self.matcher(query)
        try:
            app: NurtureApp = self.app  # type: ignore[assignment]
            found = await asyncio.to_thread(app.backend.leads.search, query)
        except Exception as exc:  # a provider error must not break the palette
            self.app.log.error(f"lead search failed: {exc}")
            return
        for hit in found:
            text = f"lead: {hit.email}" + (f" — {hit.who}" if hit.who else "")
            yield Hit(max(matcher.match(text), 0.1), matcher.highlight(text), partial(self._open, hit.lead_id),
                      help="Open lead detail")
