"""The README's first command: the main job end to end on the default (emulated) board.

See examples/digits_online/ondevice.py: a CNN trained on the host on digits 0-4 learns
digits 5-9 on a Cortex-M4F (QEMU mps2-an386) from samples streamed over its serial port.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "digits_online"))

import ondevice  # noqa: E402

if __name__ == "__main__":
    sys.exit(ondevice.main(sys.argv[1:]))
