#!/usr/bin/env bash
# Installs the dev requirements into .venv and runs the benchmarks against a local
# Redis-protocol server (REDIS_URL's, if set). Writes BENCHMARKS.md; see bench/run.py.
#
#   bash bench/run.sh [--quick] [--scenarios fanout,throughput,query,connections,soak,crash]
#                     [--soak-minutes N] [--runs N] [--profile] [--database-url URL]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh requirements-dev.txt
exec python -m presence_project.local_redis -- python -m bench.run "$@"
