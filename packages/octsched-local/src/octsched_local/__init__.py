"""octsched-local: an oct plugin (see the package README)."""
