"""Command line: `scribe run|serve|gateway|worker|speakers|replay`."""
