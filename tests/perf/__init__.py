"""Benchmarks and chaos tools: run by hand or by `make perf`, never by the default test run."""
