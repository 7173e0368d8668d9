#!/usr/bin/env bash
# Set-up shared by ./run.sh and ./test.sh: Debian packages (when root), a virtual environment
# with the pinned packages of requirements.lock, and luutru itself. Idempotent: a stamp keyed
# on the lock files' hash skips pip when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

want=$(cat scripts/apt-packages.d/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for pkg in $want; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing Debian packages (run as root to install): ${missing[*]}" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.stamp-$(cat requirements.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing pinned Python packages" >&2
    .venv/bin/python -m pip install -q --upgrade "pip>=23" >/dev/null
    .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
    .venv/bin/python -m pip install -q --no-deps -e .
    rm -f .venv/.stamp-*
    touch "$stamp"
fi

# Our own modules compiled once: an editable install leaves them as source, and with
# PYTHONDONTWRITEBYTECODE (set on many build machines) every `luutru` process would compile
# some 300 modules again at start, about 0.3 s of CPU on a Raspberry Pi class core before
# serve can answer. compileall skips what is up to date (an appliance image ships them so).
.venv/bin/python -m compileall -q -j 0 appliance sync web_ui firmware_hooks luutru >/dev/null
# The web UI's catalogs compiled beside their .po sources, named by the source's hash.
.venv/bin/python -m web_ui.i18n

# The E-ARK validator (a judge of the SIP_hoso packages, tests/archive/eark.py) lives in its
# own environment: eark-validator 1.1.3 pins lxml==5.1.0, which pyHanko cannot share.
eark_stamp=".venv-eark/.stamp-$(sha256sum scripts/eark/requirements.lock | cut -c1-16)"
if [ ! -f "$eark_stamp" ]; then
    echo "bootstrap: installing the E-ARK validator (.venv-eark)" >&2
    [ -x .venv-eark/bin/python ] || "$PY" -m venv .venv-eark
    .venv-eark/bin/python -m pip install -q --require-hashes -r scripts/eark/requirements.lock
    rm -f .venv-eark/.stamp-*
    touch "$eark_stamp"
fi
