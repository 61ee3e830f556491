"""Pipeline stages: pure functions from artifacts (and an engine) to an artifact."""
