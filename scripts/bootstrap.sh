#!/usr/bin/env bash
# Sourced by the other scripts: a .venv with the given requirements file installed.
# Re-installs only when the requirements change.
set -euo pipefail
requirements="${1:-requirements.txt}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$requirements")"
wanted=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  echo "$wanted" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m presence_project.secret_key
