#!/usr/bin/env python3
"""Regenerate firmware/runtime/tt_proto.h from tinytrain/protocol_spec.py (the one place the
protocol's constants are defined). `--check` exits 1 when the committed header is stale."""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinytrain.protocol_spec import c_header  # noqa: E402

HEADER = ROOT / "firmware" / "runtime" / "tt_proto.h"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="only check that the header is current")
    args = ap.parse_args()
    text = c_header()
    if args.check:
        if HEADER.read_text() != text:
            print(f"{HEADER} is stale: run python scripts/gen_protocol.py", file=sys.stderr)
            return 1
        return 0
    HEADER.write_text(text)
    print(f"wrote {HEADER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
