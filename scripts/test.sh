#!/usr/bin/env bash
# Installs the test dependencies (Python into .venv, the interop client's npm packages) and
# runs the whole suite against a real Redis-protocol server: REDIS_URL's, or a local one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh requirements-dev.txt
(cd tests/interop && npm ci --silent --no-audit --no-fund)
ruff check .
exec python -m presence_project.local_redis -- python -m pytest "$@"
