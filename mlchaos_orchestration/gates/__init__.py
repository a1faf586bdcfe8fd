"""Gates under test: the thin Great Expectations 1.x adapter and gate mutation analysis."""
