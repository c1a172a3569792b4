"""Presentation: terminal output, JSON envelopes, the CLI (and later HTML reports)."""
