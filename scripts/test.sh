#!/usr/bin/env bash
# Run the test suite (sets itself up first: Debian packages, venv). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$root/scripts/setup.sh" | tail -n 1)"
cd "$root"
exec "$bin/python" -m pytest -n 2 -q "$@"
