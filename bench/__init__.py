"""Benchmarks: each script prints a table; figures go to BENCHMARKS.md."""
