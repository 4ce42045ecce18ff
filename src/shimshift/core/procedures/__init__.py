"""The per-node procedures as sans-I/O generators over core.actions: `migrate` and `upgrade`."""
