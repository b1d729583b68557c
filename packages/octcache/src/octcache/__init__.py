"""octcache: an oct plugin (see the package README)."""
