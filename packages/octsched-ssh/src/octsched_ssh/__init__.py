"""octsched-ssh: an oct plugin (see the package README)."""
