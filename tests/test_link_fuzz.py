"""The device's link under libFuzzer, with AddressSanitizer and UBSan, for a bounded time
(FUZZ_SECONDS; CI keeps it short). tests/link_device/fuzz_link.c feeds the device raw bytes,
frames it builds (so the handlers see the payloads) and frames of an authenticated session
(so the write handlers are reached), and checks every frame the device sends back."""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "link_device"))
from harness import HERE, INCLUDES, LINK_SOURCES, link_build_dir  # noqa: E402,F401

from tinytrain import protocol as P  # noqa: E402

FUZZ_SECONDS = int(os.environ.get("TT_FUZZ_SECONDS", "20"))
CLANG = shutil.which("clang")

pytestmark = pytest.mark.skipif(CLANG is None, reason="clang is not installed (scripts/setup.sh installs it)")


def seed_corpus(folder: Path) -> None:
    """One input per message type and mode: the fuzzer starts from valid requests."""
    folder.mkdir()
    sample = bytes(range(16))
    payloads = {
        P.HELLO: b"", P.DESCRIBE: struct.pack("<H", 0), P.INFER: sample,
        P.TRAIN: struct.pack("<BBi", 0, 1, 2) + sample, P.INPUT_WRITE: struct.pack("<I", 0) + sample[:8],
        P.OUTPUT_READ: struct.pack("<IH", 0, 8), P.SET_MODE: b"\x01", P.GET_STATS: b"", P.RESET_STATS: b"",
        P.SET_HPARAMS: struct.pack("<fff", 0.1, 0.5, 0.0), P.GET_HPARAMS: b"", P.PARAM_INFO: struct.pack("<I", 1),
        P.WEIGHTS_READ: struct.pack("<IH", 0, 64), P.WEIGHTS_CRC: b"", P.WEIGHTS_SAVE: b"", P.WEIGHTS_LOAD: b"",
        P.LINK_STATS: b"", P.ECHO: b"hello", P.AUTH: bytes(32),
        P.WEIGHTS_BEGIN: struct.pack("<II", 272, 0) + b"1122334455667788", P.WEIGHTS_COMMIT: b"",
        P.WEIGHTS_ABORT: b"",
    }
    for t, payload in payloads.items():
        record = struct.pack("<BBH", t, 0, len(payload)) + payload
        for mode in (1, 2):
            (folder / f"{mode}-{t:02x}").write_bytes(bytes([mode]) + record)
        (folder / f"0-{t:02x}").write_bytes(b"\x00" + P.encode_frame(t, 1, payload))
    push = (struct.pack("<BBH", P.WEIGHTS_BEGIN, 0, 24) + struct.pack("<II", 272, 0) + b"1122334455667788"
            + struct.pack("<BBH", P.WEIGHTS_WRITE, 0, 260) + struct.pack("<I", 0) + bytes(256)
            + struct.pack("<BBH", P.WEIGHTS_WRITE, 0, 20) + struct.pack("<I", 256) + bytes(16)
            + struct.pack("<BBH", P.WEIGHTS_COMMIT, 0, 0))
    (folder / "2-push").write_bytes(b"\x02" + push)


@pytest.fixture(scope="module")
def fuzzer(link_build_dir) -> Path:
    exe = link_build_dir / "fuzz_link"
    sources = [s for s in LINK_SOURCES] + [HERE / "model.c", HERE / "fuzz_link.c"]
    cmd = [CLANG, "-std=c99", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
           *[f"-I{i}" for i in INCLUDES], *map(str, sources), "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exe


def test_the_link_survives_fuzzing(fuzzer, tmp_path):
    corpus = tmp_path / "corpus"
    seed_corpus(corpus)
    proc = subprocess.run([str(fuzzer), f"-max_total_time={FUZZ_SECONDS}", "-seed=1", "-max_len=4096",
                           "-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1", str(corpus)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=FUZZ_SECONDS + 120)
    log = proc.stderr
    assert proc.returncode == 0, log[-4000:]
    runs = int(log.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 1000, log[-2000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("leak-*"))
