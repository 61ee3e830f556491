"""Benchmarks: system overhead, upload acceptance and SSE latency (see bench/README.md)."""
