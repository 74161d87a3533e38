"""Browser tests and the helpers they share with the benchmarks (st_browser)."""
