"""Fault tests: crashes, outages and throttling on purpose."""
