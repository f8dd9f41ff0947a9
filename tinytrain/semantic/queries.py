"""The registry's ready-made questions, in SPARQL 1.1 (docs/semantic.md shows them).

- `by_hash`:  which devices run model hash H (with its arena and trainable bytes);
- `fits`:     which boards, and which registered devices, can take a model: the fit check
              of `tinytrain build` (arena + trainable + stack + runtime <= usable SRAM,
              constants + code <= usable flash), evaluated by the store over the boards'
              Thing Models, with the model's figures from figures.memory_figures;
- `diverged`: which devices' weights differ from their fleet's: the reference weights
              registered for their model hash, else the weights most of its devices have.
Every query names its graphs (GRAPH ?g), so any SPARQL 1.1 store answers it as is.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from ..errors import TinyTrainError
from . import vocabulary as V
from .figures import ModelFigures

PREFIXES = (f"PREFIX tt: <{V.NS}>\n"
            "PREFIX td: <https://www.w3.org/2019/wot/td#>\n"
            "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n")

HASH_PATTERN = re.compile(r"^[0-9a-f]{16}$")

# The queries keep per-device patterns few and required (the store pays a lookup per device
# and pattern), put small tables (VALUES, subqueries over the 8 boards) where the store
# evaluates them once, and sort in Python: on 10,000 devices that makes them 2-10x faster.

DEVICES = PREFIXES + """SELECT ?device ?board ?modelName ?modelHash ?scheme ?stepsTrained ?weightsCrc32 ?host ?port
WHERE {
  GRAPH ?g {
    ?device tt:runs ?model ; tt:board ?b ; tt:host ?host ; tt:port ?port ; tt:stepsTrained ?stepsTrained .
    ?model tt:modelHash ?modelHash ; tt:modelName ?modelName .
    OPTIONAL { ?model tt:scheme ?scheme }
    OPTIONAL { ?device tt:weightsCrc32 ?weightsCrc32 }
  }
  BIND(STRAFTER(STR(?b), "%s") AS ?board)
}""" % V.BOARD_IRI


def devices(registry) -> list[dict]:
    return sorted(registry.select(DEVICES), key=lambda r: (r["board"], r["device"]))


def by_hash_query(model_hash: str) -> str:
    if not HASH_PATTERN.match(model_hash):
        raise TinyTrainError(f"a model hash is 16 hex digits (as `inspect --json` prints it), not {model_hash!r}")
    # The model nodes first (one per compiled model, found once however many TDs repeat
    # them), then the devices that run them.
    return PREFIXES + f"""SELECT ?device ?board ?host ?port ?modelName ?scheme ?arenaBytes ?trainableBytes
       ?stepsTrained ?weightsCrc32 WHERE {{
  {{ SELECT DISTINCT ?model ?modelName ?scheme ?arenaBytes ?trainableBytes WHERE {{
    GRAPH ?gm {{
      ?model tt:modelHash "{model_hash}" ; tt:modelName ?modelName ;
             tt:arenaBytes ?arenaBytes ; tt:trainableBytes ?trainableBytes .
      OPTIONAL {{ ?model tt:scheme ?scheme }}
    }}
  }} }}
  GRAPH ?g {{
    ?device tt:runs ?model ; tt:board ?b ; tt:host ?host ; tt:port ?port ; tt:stepsTrained ?stepsTrained .
    OPTIONAL {{ ?device tt:weightsCrc32 ?weightsCrc32 }}
  }}
  BIND(STRAFTER(STR(?b), "{V.BOARD_IRI}") AS ?board)
}}"""


_BOARD_LIMITS = """GRAPH ?gb {
    ?b a tt:Board ; tt:boardName ?board ; tt:sramUsableBytes ?sramLimit ; tt:flashUsableBytes ?flashLimit ;
       tt:stackReserveBytes ?stack ; tt:runtimeSramBytes ?runtime ; tt:codeFlashBytes ?code .
  }"""


def _used(f: ModelFigures) -> str:
    return (f"BIND({int(f.arena_bytes)} + {int(f.trainable_param_bytes)} + ?stack + ?runtime AS ?sramUsed)\n"
            f"  BIND({int(f.flash_bytes)} + ?code AS ?flashUsed)")


def fits_boards_query(f: ModelFigures) -> str:
    return PREFIXES + f"""SELECT ?board ?sramUsed ?sramLimit ?flashUsed ?flashLimit ?fits WHERE {{
  {_BOARD_LIMITS}
  {_used(f)}
  BIND(?sramUsed <= ?sramLimit && ?flashUsed <= ?flashLimit AS ?fits)
}} ORDER BY ?board"""


def fits_devices_query(f: ModelFigures) -> str:
    # The boards that fit first (a subquery over 8 boards), then their devices by index.
    return PREFIXES + f"""SELECT ?device ?board WHERE {{
  {{ SELECT ?b ?board WHERE {{
    {_BOARD_LIMITS}
    {_used(f)}
    FILTER(?sramUsed <= ?sramLimit && ?flashUsed <= ?flashLimit)
  }} }}
  GRAPH ?g {{ ?device tt:board ?b }}
}}"""


WEIGHTS_COUNTS = PREFIXES + """SELECT ?model ?crc (COUNT(?device) AS ?devices) WHERE {
  GRAPH ?g { ?device tt:weightsCrc32 ?crc ; tt:runs ?model . }
} GROUP BY ?model ?crc"""

MODEL_HASHES = PREFIXES + """SELECT DISTINCT ?model ?hash WHERE { GRAPH ?g { ?model tt:modelHash ?hash } }"""

RELEASES = PREFIXES + """SELECT ?hash ?crc WHERE {
  GRAPH ?g { ?r a tt:WeightsRelease ; tt:releasedFor ?hash ; tt:releasedCrc32 ?crc . }
}"""


def diverged_query(references: dict[str, int]) -> str:
    """Devices whose CRC differs from their model's reference; `references`: model IRI ->
    CRC. VALUES after the graph pattern: before it, the store evaluates the pattern once per
    row of VALUES."""
    values = " ".join(f"(<{m}> {int(c)})" for m, c in sorted(references.items()))
    return PREFIXES + f"""SELECT ?device ?model ?crc ?reference WHERE {{
  GRAPH ?g {{ ?device tt:weightsCrc32 ?crc ; tt:runs ?model . }}
  VALUES (?model ?reference) {{ {values} }}
  FILTER(?crc != ?reference)
}}"""


# --- running them ---------------------------------------------------------------------------

def by_hash(registry, model_hash: str) -> list[dict]:
    return sorted(registry.select(by_hash_query(model_hash)), key=lambda r: r["device"])


@dataclass
class FitsAnswer:
    figures: ModelFigures
    boards: list[dict]       # every board: sramUsed, sramLimit, flashUsed, flashLimit, fits
    devices: list[dict]      # registered devices on the boards that fit: device, board

    def as_dict(self) -> dict:
        return dict(model=self.figures.model_name, model_hash=self.figures.model_hash, scheme=self.figures.scheme,
                    memory=self.figures.memory, boards=self.boards, devices=self.devices)


def fits(registry, figures: ModelFigures, devices: bool = True) -> FitsAnswer:
    boards = registry.select(fits_boards_query(figures))
    found = registry.select(fits_devices_query(figures)) if devices else []
    found.sort(key=lambda r: (r["board"], r["device"]))
    return FitsAnswer(figures, boards, found)


@dataclass
class Divergence:
    references: dict[str, dict]   # model hash -> {"crc32", "basis": "release" | "majority", "devices"}
    undecided: dict[str, dict]    # model hash -> {crc: devices}: no release and no single majority
    diverged: list[dict]          # device, hash, crc, reference


def diverged(registry) -> Divergence:
    hash_of = {r["model"]: r["hash"] for r in registry.select(MODEL_HASHES)}
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in registry.select(WEIGHTS_COUNTS):
        counts[hash_of[r["model"]]][int(r["crc"])] += int(r["devices"])
    releases = {r["hash"]: int(r["crc"]) for r in registry.select(RELEASES)}
    references, undecided = {}, {}
    for h, by_crc in counts.items():
        if h in releases:
            references[h] = dict(crc32=releases[h], basis="release", devices=sum(by_crc.values()))
            continue
        top = max(by_crc.values())
        leaders = [c for c, n in by_crc.items() if n == top]
        if len(leaders) == 1:
            references[h] = dict(crc32=leaders[0], basis="majority", devices=sum(by_crc.values()))
        else:
            undecided[h] = {f"{c:08x}": n for c, n in sorted(by_crc.items())}
    per_model = {m: references[h]["crc32"] for m, h in hash_of.items() if h in references}
    found = registry.select(diverged_query(per_model)) if per_model else []
    rows = sorted((dict(device=r["device"], hash=hash_of[r["model"]], crc=r["crc"], reference=r["reference"])
                   for r in found), key=lambda r: (r["hash"], r["device"]))
    return Divergence(references, undecided, rows)
