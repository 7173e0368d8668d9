#!/usr/bin/env bash
# Start the appliance on its embedded defaults (SQLite, software key, demo commune).
# Usage: ./run.sh [DATA_DIR]   (default: $LUUTRU_DATA, then ./var/appliance)
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
data="${1:-${LUUTRU_DATA:-var/appliance}}"
exec .venv/bin/luutru demo --data "$data"
