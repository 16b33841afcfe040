"""Reusable widgets: the header, KPI tiles, the virtual lead list, charts."""
