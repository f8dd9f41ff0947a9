"""The fleet registry at scale: 10,000 registered device TDs in the embedded store (no network).

Prints, beside the targets of issue 14: a hash lookup (`fleet query --hash`), a `--fits`
query over the fleet (`fleet query --fits`: the boards' verdicts and every registered
device on a board that fits), and registering one more TD with its SHACL validation
(`fleet add`), each the median of repeated runs, as wall time and as this process's CPU
time (on a machine shared with other work the CPU time is what an idle machine's wall time
would be; the operations are single-threaded).

The fleet: the digits example and the three reference models (49kb schemes, 10 classes) on
all 8 boards, 10,000 devices with 50 distinct model hashes (each compiled model in several
fine-tuned variants) and varying steps and weights. Populating converts one template TD per
model and board and substitutes each device's values in its RDF (checked equal to the real
conversion for 25 devices), then bulk-loads it (Store.bulk_extend) without validation:
validation is what the registration row times, one TD at a time, on top of the 10,000.

    python bench/bench_fleet.py [--devices 10000] [--store DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pyoxigraph as ox  # noqa: E402

from semantic_helpers import MODELS, description  # noqa: E402  (a build's DESCRIBE reply)
from tinytrain.boards import board_names  # noqa: E402
from tinytrain.semantic import queries  # noqa: E402
from tinytrain.semantic.contexts import to_triples  # noqa: E402
from tinytrain.semantic.device import DeviceState  # noqa: E402
from tinytrain.semantic.figures import memory_figures  # noqa: E402
from tinytrain.semantic.store import Registry  # noqa: E402
from tinytrain.semantic.td import thing_description, thing_name  # noqa: E402

VARIANTS = 50          # distinct model hashes in the fleet


MODIFIED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _device(i: int):
    """(description, port, host, CRC) of device i: model, board and variant cycle."""
    models, boards = list(MODELS), board_names()
    model, board = models[i % len(models)], boards[(i // len(models)) % len(boards)]
    d = description(model, board, steps=(i * 37) % 5000)
    variant = i % VARIANTS
    if variant >= len(models):        # a fine-tuned variant: its own hash
        d = dataclasses.replace(d, model_hash=f"{variant:04x}{d.model_hash[4:]}")
    return d, f"socket://10.0.{i // 250}.{i % 250}:5000", f"host-{i // 40:04d}", (i % 3) * 0x1111 + variant


def fleet_td(i: int) -> dict:
    d, port, host, crc = _device(i)
    return thing_description(DeviceState(d, port, host, d.trainable_bytes, crc), modified=MODIFIED)


class TemplateConverter:
    """The RDF of device i's TD without running JSON-LD for each of 10,000 TDs: the TD of
    a template device with the same model, board and variant is converted once, and the
    few values that differ (id, thing name, port, host, steps, CRC) are substituted in its
    N-Triples. `check` compares with the real conversion."""

    TEMPLATE = dict(port="socket://template.invalid:1", host="template-host", steps=987654321, crc=4000000001)

    def __init__(self):
        self.cache: dict = {}

    def _template(self, d):
        key = (d.model_hash, d.board)
        if key not in self.cache:
            t = self.TEMPLATE
            td = thing_description(DeviceState(dataclasses.replace(d, steps=t["steps"]), t["port"], t["host"],
                                               d.trainable_bytes, t["crc"]), modified=MODIFIED)
            nt = ox.serialize(to_triples(td), format=ox.RdfFormat.N_TRIPLES).decode()
            self.cache[key] = (td["id"], thing_name(d.board, td["id"]), nt)
        return self.cache[key]

    def triples(self, i: int):
        d, port, host, crc = _device(i)
        t = self.TEMPLATE
        iri, name, nt = self._template(d)
        td = fleet_td(i)
        for old, new in ((iri, td["id"]), (f"/things/{name}/", f"/things/{thing_name(d.board, td['id'])}/"),
                         (t["port"], port), (t["host"], host),
                         (f'"{t["steps"]}"^^', f'"{d.steps}"^^'), (f'"{t["crc"]}"^^', f'"{crc}"^^')):
            nt = nt.replace(old, new)
        return td["id"], list(ox.parse(nt, format=ox.RdfFormat.N_TRIPLES, rename_blank_nodes=True))

    def check(self, i: int) -> None:
        iri, fast = self.triples(i)
        real = to_triples(fleet_td(i))
        assert canonical(fast) == canonical(real), f"template conversion differs for device {i}"


def canonical(triples) -> list[str]:
    ds = ox.Dataset([ox.Quad(t.subject, t.predicate, t.object) for t in triples])
    ds.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return sorted(str(q) for q in ds)


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(median wall ms, median CPU ms, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append((time.process_time() - c) * 1000)
        walls.append((time.perf_counter() - w) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--store", default=None,
                    help="store folder (default: a new temporary one); an existing one is reused as it is")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    location = args.store or str(Path(tmp.name) / "fleet")
    reused = Path(location).is_dir()
    reg = Registry(location)
    if not reused:
        populate(reg, args.devices)
    n_devices = len(queries.devices(reg))
    assert n_devices >= args.devices, n_devices
    measure(reg, args.devices)
    reg.close()


def populate(reg, devices: int) -> None:
    t0 = time.perf_counter()
    conv = TemplateConverter()
    for i in range(0, devices, max(1, devices // 25)):     # 25 devices: same RDF as the real conversion
        conv.check(i)
    batch = []
    for i in range(devices):
        batch.append(conv.triples(i))
        if len(batch) == 500 or i == devices - 1:
            reg.backend.store.bulk_extend([ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(iri))
                                           for iri, triples in batch for t in triples])
            batch = []
            print(f"\rpopulating: {i + 1:,} TDs", end="", file=sys.stderr, flush=True)
    # Let the store compact what was bulk-loaded (RocksDB does it in the background anyway,
    # and its threads' work would land in the timings).
    reg.backend.store.optimize()
    print(f"\npopulated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def measure(reg, devices: int) -> None:
    some = fleet_td(7)        # a variant hash: 1/50 of the fleet runs it
    variant_hash = some["tt:runs"]["tt:modelHash"]
    rows = []
    wall, cpu, found = timed(lambda: queries.by_hash(reg, variant_hash), 20)
    rows.append(("hash lookup (fleet query --hash)", wall, cpu, 50, f"{len(found)} devices"))

    model_path, scheme, classes = MODELS["mcunet-5fps"]
    c0 = time.perf_counter()
    figures = memory_figures(str(model_path), scheme, num_classes=classes)
    compile_ms = (time.perf_counter() - c0) * 1000
    wall, cpu, answer = timed(lambda: queries.fits(reg, figures), 10)
    fitting = sum(1 for b in answer.boards if b["fits"])
    rows.append(("--fits over the fleet (SPARQL)", wall, cpu, 500,
                 f"{fitting}/8 boards, {len(answer.devices)} devices"))

    extra = [fleet_td(devices + k) for k in range(30)]
    it = iter(extra)
    reg.add(fleet_td(devices + 1000))     # warm: shapes loaded once per process
    wall, cpu, _ = timed(lambda: reg.add(next(it)), len(extra))
    rows.append(("register a TD, with SHACL (fleet add)", wall, cpu, 100, "median of 30"))
    wall, cpu, d = timed(lambda: queries.diverged(reg), 5)
    rows.append(("diverged weights (fleet query --diverged)", wall, cpu, None, f"{len(d.diverged)} devices"))
    for td in [*extra, fleet_td(devices + 1000)]:      # leave the store as it was
        reg.remove(td["id"])

    print(f"fleet: {devices:,} device TDs ({VARIANTS} model hashes, 8 boards), embedded store")
    print(f"(--fits compiles the model first: {compile_ms:.0f} ms for mcunet-5fps 49kb, once per query)\n")
    print(f"{'operation':44s} {'wall ms':>9s} {'CPU ms':>9s} {'target':>8s}  result")
    for name, wall, cpu, target, note in rows:
        tgt = f"< {target}" if target else "-"
        verdict = "" if not target else ("  ok" if cpu < target else "  OVER")
        print(f"{name:44s} {wall:9.1f} {cpu:9.1f} {tgt:>8s}{verdict}  {note}")


if __name__ == "__main__":
    main()
