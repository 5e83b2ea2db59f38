#!/usr/bin/env bash
# Installs what `make bench-http` needs beyond `make setup`, idempotently: nginx, Varnish and
# wrk from Debian's packages (through benchmarks/compare/setup.sh, which keeps the packaged services from
# running), and matplotlib, pinned, in the project's virtualenv for the chart.
set -euo pipefail
cd "$(dirname "$0")/../.."

benchmarks/compare/setup.sh wrk
command -v wrk >/dev/null 2>&1 || { echo "bench-http: wrk is required (Debian package wrk)" >&2; exit 1; }

MATPLOTLIB_VERSION=3.11.2
VENV=.cache/venv
stamp="$VENV/.bench-http-matplotlib-$MATPLOTLIB_VERSION"
if [ ! -f "$stamp" ]; then
    echo "bench-http: installing matplotlib $MATPLOTLIB_VERSION in $VENV (for docs/bench-http.png)" >&2
    # `python -m pip`, not bin/pip: a copied venv keeps the scripts' old shebang.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION"
    touch "$stamp"
fi
