#!/usr/bin/env bash
# The main job end to end on the default board (sets itself up first).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$root/scripts/setup.sh" | tail -n 1)"
cd "$root"
exec "$bin/python" examples/demo.py "$@"
