"""Thin route modules: parse the request, call storage/events, shape the answer."""
