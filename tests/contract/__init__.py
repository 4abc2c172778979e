"""Contract and drift tests against the libraries whose internals we lean on (run at both ends of each pin)."""
