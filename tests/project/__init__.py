"""Checks of the repository itself: arrows, exception tree, locks, deploy files."""
