#!/usr/bin/env bash
# Regenerates the *_pb2.py modules after a .proto file changes (needs requirements-dev.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I presence/rpc --python_out=presence/rpc --pyi_out=presence/rpc \
  presence/rpc/dcl_rpc.proto
python -m grpc_tools.protoc -I presence/protocol --python_out=presence/protocol \
  --pyi_out=presence/protocol presence/protocol/friendships_service.proto \
  presence/protocol/social_service_v2.proto
