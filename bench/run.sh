#!/usr/bin/env bash
# Installs the dev requirements into .venv and runs the benchmarks against a local
# Redis-protocol server (REDIS_URL's, if set). Writes BENCHMARKS.md; see bench/run.py.
#
#   bash bench/run.sh [--quick] [--scenarios fanout,throughput,query,connections,soak,crash,storm]
#                     [--scenarios fanout-curve,connection-curve,query-curve,shards]
#                     [--soak-minutes N] [--runs N] [--profile] [--database-url URL]
#                     [--storm-before DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh requirements-dev.txt
# The reconnect storm's clients are Decentraland's own (bench/storm.mjs).
(cd tests/interop && npm ci --silent --no-audit --no-fund)
exec python -m presence_project.local_redis -- python -m bench.run "$@"
