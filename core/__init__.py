"""Shared vocabulary of Scribe: settings, artifact models, events and errors."""
