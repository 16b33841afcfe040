"""Scoring: behaviour score rules with decay, fit grades, MQL thresholds, assignment and hand-off."""
