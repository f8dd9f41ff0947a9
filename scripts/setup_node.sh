#!/usr/bin/env bash
# The standard WoT client the gateway tests run (Eclipse Thingweb node-wot, from npm), installed
# OUTSIDE the clone, keyed on a hash of tests/wot/package-lock.json: reused until the lock
# changes. Needs Node.js and npm (Debian's nodejs/npm are installed if missing).
# Prints the node_modules folder on its last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/tests/wot/package-lock.json"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Node.js and npm (Debian packages)" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi

hash=$(cat "$root/tests/wot/package.json" "$lock" | sha256sum | cut -c1-16)
cache="${TINYTRAIN_HOME:-$HOME/.cache/tinytrain}"
dir="$cache/node-$hash"
if [ ! -f "$dir/.complete" ]; then
  echo "setup: installing node-wot into $dir (first run only)" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/tests/wot/package.json" "$lock" "$dir/"
  if ! log=$(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  touch "$dir/.complete"
fi
echo "$dir/node_modules"
