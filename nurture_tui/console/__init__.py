"""The console layer: headless read and write models for the TUI, one module per screen area.

Screens and widgets reach the core only through here (import-linter forbids `nurture_tui.tui` from
importing `nurture_tui.store`). Every function opens its own connection on the session's reader, returns
frozen DTOs, and writes through the owning area's service, which audits. Nothing here imports Textual, so
every read and write a screen makes is testable without a terminal. See docs/architecture.md.
"""
