"""Persistence: engine factory, tables, migrations and Core bulk helpers."""
