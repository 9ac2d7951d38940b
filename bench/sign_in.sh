#!/usr/bin/env bash
# Installs the dev requirements into .venv and measures WebSocket sign-in latency on a
# throwaway PostgreSQL cluster, idle and beside a slow staff page (see bench/sign_in.py).
# Prints a table; writes nothing.
#
#   bash bench/sign_in.sh [--runs N] [--sign-ins N] [--slow-requests N] [--database-url URL]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh requirements-dev.txt
exec python -m presence_project.local_redis -- python -m bench.sign_in "$@"
