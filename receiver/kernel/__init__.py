"""The kernel every role shares: events, settings, Redis names and clients, logs; no web framework, no fast pipe."""
