"""The pure core: version rules, flag files, drain decisions, plans. Data in, data out; no I/O."""
