"""The command line: invoke tasks (``invoke train`` from a checkout, ``oct train`` installed)."""
