#!/usr/bin/env bash
# Start the appliance on its embedded defaults and serve the web UI: a demo commune (SQLite,
# software device key), and a local provincial centre that the appliance enrols with and
# syncs to. Prints the URLs and, the first time, the first sign-ins.
# Usage: ./run.sh [DATA_DIR]   (default: $LUUTRU_DATA, then ./var/appliance; the local centre
# lives beside it in ./var/centre, or $LUUTRU_CENTRE_DATA; LUUTRU_NO_CENTRE=1 leaves it out)
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
luutru=.venv/bin/luutru
data="${1:-${LUUTRU_DATA:-var/appliance}}"
centre="${LUUTRU_CENTRE_DATA:-var/centre}"
centre_port="${LUUTRU_CENTRE_PORT:-8470}"
$luutru demo --data "$data"

if [ -z "${LUUTRU_NO_CENTRE:-}" ]; then
  [ -f "$centre/centre.json" ] || $luutru central init --data "$centre"
  $luutru central serve --data "$centre" --port "$centre_port" &
  centre_pid=$!
  trap 'kill "$centre_pid" 2>/dev/null; wait "$centre_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do   # until the centre answers (at most ~10 s)
    .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$centre_port/healthz" 2>/dev/null && break
    sleep 0.2
  done
  if [ ! -f "$data/sync/enrolment.json" ]; then
    org_id=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['org_id'])" \
      "$data/appliance.json")
    token=$($luutru central token --data "$centre" --org-id "$org_id" | tail -n 1)
    $luutru enrol --data "$data" --centre "http://127.0.0.1:$centre_port" --token "$token"
  fi
  if [ -z "$($luutru central dashboard-user --data "$centre" --list)" ]; then
    dash_pw=$(.venv/bin/python -c "from web_ui.accounts import random_password; print(random_password())")
    printf '%s\n' "$dash_pw" | $luutru central dashboard-user --data "$centre" \
      --username tinh --password-stdin >/dev/null
    echo "luutru: centre dashboard account: tinh / $dash_pw (shown once)"
  fi
  echo "luutru: local provincial centre at http://127.0.0.1:$centre_port/ (dashboard)"
fi

# Loopback by default; LUUTRU_HOST=0.0.0.0 serves the office LAN (and advertises it by mDNS).
$luutru serve --data "$data" --host "${LUUTRU_HOST:-127.0.0.1}" --port "${LUUTRU_PORT:-8080}"
