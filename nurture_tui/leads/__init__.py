"""Leads: CSV import/export and lead services."""
