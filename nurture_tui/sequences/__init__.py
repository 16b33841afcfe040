"""Sequences: definition model, YAML codec, validation, versions and the simulator."""
