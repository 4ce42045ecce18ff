"""Command line and reports: the only layer that prints."""
