"""Engine: entry, due-step claim/execute/advance, time rules, event wake, scheduler wiring, lease."""
