"""Drives the per-node steps and the fleet; owns the journal, the clock and the order of I/O."""
