#!/usr/bin/env bash
# Installs what the service needs into .venv and runs it with daphne on one port:
# the dcl-rpc WebSocket at ws://HOST:PORT/, REST under /api/v1/, the admin under /admin/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh requirements.txt
python manage.py migrate --noinput
exec python -m presence_project.local_redis -- \
  python -m presence_project.server -b "${HOST:-127.0.0.1}" -p "${PORT:-8000}"
