"""Benchmarks: `nurture bench …` scenarios, each timed against a reference measured in the same run."""
