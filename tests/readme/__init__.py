"""The README's promises, one test module per section."""
