"""The test suite (a package, so tests and benchmarks import its helpers by their full name)."""
