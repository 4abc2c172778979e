"""Everything that reaches into RQ's private hooks or copies RQ's routines, kept in one place (pinned, drift-tested)."""
