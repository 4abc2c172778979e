"""End-to-end tests: real processes from callback to storage."""
