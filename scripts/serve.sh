#!/usr/bin/env bash
# Sets up and starts the transparency service on its embedded default: SQLite in ./data, 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tabellion serve --data "${TABELLION_DATA:-./data}" --host 127.0.0.1 --port "${TABELLION_PORT:-8000}" "$@"
