"""The monitoring files shipped in deploy/ (Prometheus alerts, Grafana dashboard), read for the tests."""
