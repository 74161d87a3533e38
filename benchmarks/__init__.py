"""Benchmarks: they measure and print; the test suite checks correctness, never timings."""
