"""Benchmarks behind ``dpg bench``: seeded workloads, printed as JSON lines, never asserted."""
