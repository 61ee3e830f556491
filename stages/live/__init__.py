"""Live meetings: streaming recognition, live speakers, the live worker (docs/live.md)."""
