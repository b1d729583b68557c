"""Files the ssh backend copies to each host (standard library and POSIX sh only)."""
