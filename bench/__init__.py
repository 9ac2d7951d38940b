"""End-to-end benchmarks of the presence service: `bash bench/run.sh` (see bench/run.py)."""
