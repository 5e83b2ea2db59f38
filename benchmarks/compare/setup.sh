#!/usr/bin/env bash
# Installs what `make compare` needs beyond `make setup`: nginx and Varnish from Debian's
# packages, and any further Debian packages named as arguments whose command has the package's
# name (`make bench-http` adds wrk). Quick when they are there already. The packaged services are never left
# running: the comparison starts its own instances with its own configuration, pid files
# and ports on 127.0.0.1 (benchmarks/compare/src/caches.rs).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have nginx || missing+=(nginx)
have varnishd || missing+=(varnish)
for pkg in "$@"; do
    have "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "compare: apt-get not found; ${missing[*]} will be scored as not available" >&2
        exit 0
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "compare: installing ${missing[*]} from Debian's packages" >&2
    # Keep the packages' init scripts from starting the system services during install
    # (the standard policy-rc.d switch), unless the machine already has its own policy.
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    status=0
    { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        || status=$?
    [ -z "$own_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
    if [ "$status" -ne 0 ]; then
        echo "compare: could not install ${missing[*]} (apt-get exit $status);" \
             "they will be scored as not available" >&2
    fi
    # Where a package's service did start (systemd machines ignore policy-rc.d), stop it and
    # keep it from starting at boot: the comparison needs none of the system services.
    for svc in nginx varnish varnishncsa; do
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$svc" ]; then
            $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi
exit 0
