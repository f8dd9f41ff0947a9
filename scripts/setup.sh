#!/usr/bin/env bash
# Set up everything tinytrain needs on a fresh Debian machine, idempotently:
# Debian packages (ARM toolchain, QEMU), and a Python venv kept OUTSIDE the clone, keyed on a
# hash of pyproject.toml so it is reused until the dependencies change; for the tests also
# node-wot from npm (scripts/setup_node.sh), likewise outside the clone.
# Prints the venv's bin folder on its last line; source-able: `. scripts/setup.sh`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
# clang with libFuzzer: the fuzz test of the device's frame decoder (tests/test_link_fuzz.py).
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need_apt+=(libclang-rt-dev)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)     # examples/kws: spoken keywords
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

hash=$(sha256sum "$root/pyproject.toml" | cut -c1-16)
cache="${TINYTRAIN_HOME:-$HOME/.cache/tinytrain}"
venv="$cache/venv-$hash"
if [ ! -x "$venv/bin/tinytrain" ] || [ ! -f "$venv/.complete" ]; then
  echo "setup: creating Python environment $venv (first run only; downloads TensorFlow, ~2 min)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  # pip's own chatter (and the build backend's warnings) go to a log, shown only on failure
  log="$cache/setup-pip.log"
  if ! { "$venv/bin/pip" install -q --upgrade pip setuptools wheel && "$venv/bin/pip" install -q "$root[test]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup: pip failed (whole log: $log)" >&2
    exit 1
  fi
  touch "$venv/.complete"
fi
# This clone's code, editable (fast: no dependencies resolved); skipped when the venv already
# points here (asked from / : in the clone, `import tinytrain` would find the clone's folder even
# when the venv holds a copy, which the tests' subprocesses in other folders would then run).
# The build backend's deprecation warnings are shown only if the install fails.
if [ "$(cd / && "$venv/bin/python" -c 'import pathlib, tinytrain; print(pathlib.Path(tinytrain.__file__).resolve().parent.parent)' 2>/dev/null)" != "$(cd "$root" && pwd -P)" ]; then
  if ! log=$("$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$root" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
fi
# The WoT client the gateway tests use (node-wot), beside the venv.
"$root/scripts/setup_node.sh" >/dev/null
echo "$venv/bin"
