"""nurture: keyboard-first lead nurturing."""
