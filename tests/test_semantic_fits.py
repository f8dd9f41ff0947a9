"""`fleet query --fits` agrees with `tinytrain build` on every pair of (3 reference models x
(their 15 schemes + full), with a fresh 10-class head as the README's figures) x 8 boards.

Build's verdict is the fit check of tinytrain.compile for the board (Compiled.fit(), the
check `build` runs before writing anything: Compiled.write_project refuses exactly when it
fails). That this is build's answer is also checked by running the real `tinytrain build
--no-compile` for a sample of pairs (fit, refused, not applicable) and comparing exit codes
and figures.

The registry's verdict is the SPARQL fit check over the boards' Thing Models, on the
figures from figures.memory_figures, as `fleet query --fits` computes them. The compiler
runs once per model and scheme (48 times), not per board."""
import json
import subprocess
import sys

import pytest

from conftest import REFERENCE_MODELS
from tinytrain.boards import list_boards
import tinytrain
from tinytrain.errors import TinyTrainError
from tinytrain.project import fit_check
from tinytrain.semantic import queries
from tinytrain.semantic.figures import memory_figures
from tinytrain.semantic.store import Registry

NUM_CLASSES = 10


def _schemes(tte_models) -> list[str]:
    return ["full"] + sorted(str(p) for p in (tte_models / "schemes").glob("*.json"))


def _build_memory(model_path, scheme):
    """The memory dict `tinytrain build MODEL --train SCHEME --num-classes 10` fit-checks."""
    return tinytrain.compile(str(model_path), scheme=scheme, num_classes=NUM_CLASSES).memory


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with Registry(str(tmp_path_factory.mktemp("fleet") / "store")) as reg:
        yield reg


def _verdicts(registry, model_path, scheme, boards):
    """(build's verdicts, the registry's verdicts): board -> "fits" / "refused" / error text."""
    try:
        memory = _build_memory(model_path, scheme)
        build = {b.name: ("fits" if fit_check(memory, b).fits else "refused") for b in boards}
        build_used = {b.name: (fit_check(memory, b).totals["SRAM"]["used"], fit_check(memory, b).totals["flash"]["used"])
                      for b in boards}
    except TinyTrainError as e:
        build, build_used = {b.name: f"error: {e}" for b in boards}, {}
    try:
        answer = queries.fits(registry, memory_figures(str(model_path), scheme, num_classes=NUM_CLASSES),
                              devices=False)
        fleet = {r["board"]: ("fits" if r["fits"] else "refused") for r in answer.boards}
        fleet_used = {r["board"]: (r["sramUsed"], r["flashUsed"]) for r in answer.boards}
    except TinyTrainError as e:
        fleet, fleet_used = {b.name: f"error: {e}" for b in boards}, {}
    return build, fleet, build_used, fleet_used


def test_fits_agrees_with_build_on_every_pair(registry, tte_models):
    boards = list_boards()
    assert len(boards) == 8
    disagreements, counts = [], {"fits": 0, "refused": 0, "error": 0}
    for model in REFERENCE_MODELS:
        for scheme in _schemes(tte_models):
            build, fleet, build_used, fleet_used = _verdicts(registry, tte_models / f"{model}.json", scheme, boards)
            assert build_used == fleet_used, (model, scheme)
            for b in boards:
                counts[build[b.name].split(":")[0]] += 1
                if build[b.name] != fleet.get(b.name):
                    disagreements.append((model, scheme, b.name, build[b.name], fleet.get(b.name)))
    assert sum(counts.values()) == 3 * 16 * 8 == 384
    assert disagreements == [], disagreements[:10]
    # Every verdict occurs (here: 224 fit, 40 refused, 120 schemes of another model that do
    # not apply): the agreement is not vacuous.
    assert counts["fits"] > 100 and counts["refused"] > 20 and counts["error"] > 0, counts


def _tinytrain(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


# (model, scheme file or "full", board): fits, refused on SRAM, refused on flash, not applicable
SAMPLE = [("mcunet-5fps", "mcunet-5fps-49kb", "pico"),
          ("mcunet-5fps", "full", "nucleo_h743zi"),
          ("mcunet-5fps", "mcunet-5fps-99kb", "mps3-an547"),
          ("mbv2-w0.35", "proxyless-w0.3-148kb", "native")]


@pytest.mark.parametrize("model,scheme,board", SAMPLE, ids=["-".join(s) for s in SAMPLE])
def test_the_real_build_gives_the_same_answer(registry, tte_models, tmp_path, model, scheme, board):
    scheme_arg = scheme if scheme == "full" else str(tte_models / "schemes" / f"{scheme}.json")
    model_path = tte_models / f"{model}.json"
    proc = _tinytrain("build", model_path, "--train", scheme_arg, "--num-classes", NUM_CLASSES, "--board", board,
                      "-o", tmp_path / "out", "--no-compile", "--json", cwd=tmp_path)
    fleet = _tinytrain("fleet", "query", "--store", tmp_path / "store", "--fits", model_path, "--train", scheme_arg,
                       "--num-classes", NUM_CLASSES, "--json", cwd=tmp_path)
    if proc.returncode == 0:
        built = json.loads(proc.stdout)
        answer = json.loads(fleet.stdout)
        row = next(r for r in answer["boards"] if r["board"] == board)
        assert row["fits"] is True
        # the build adds the device link's optional RAM copy of the trainable state where it
        # still fits (docs/protocol.md, SPARE_RAM); the verdict is the model's without it
        spare = built["memory"].get("link_spare_bytes", 0)
        assert row["sramUsed"] + spare == built["fit"]["totals"]["SRAM"]["used"]
        assert row["flashUsed"] == built["fit"]["totals"]["flash"]["used"]
        for key in ("arena_bytes", "trainable_param_bytes", "flash_bytes"):
            assert answer["memory"][key] == built["memory"][key], key
        assert answer["model_hash"] == built["model_hash"]
    else:
        assert proc.returncode == 2 and not (tmp_path / "out").exists()
        if "does not fit" in proc.stderr:
            answer = json.loads(fleet.stdout)
            assert next(r for r in answer["boards"] if r["board"] == board)["fits"] is False
        else:      # the scheme does not apply to the model: both refuse with the same message
            assert fleet.returncode == 2 and fleet.stderr.strip() == proc.stderr.strip()
    verdict = "fits" if proc.returncode == 0 else ("refused" if "does not fit" in proc.stderr else "error")
    # mps3-an547 links its constants to the 8 MiB QSPI flash (docs/boards.md): MCUNet fits there
    expected = {"pico": "fits", "nucleo_h743zi": "refused", "mps3-an547": "fits", "native": "error"}[board]
    assert verdict == expected, proc.stderr[-500:]


def test_fits_figures_are_inspects(tte_models, tmp_path):
    """The hash and memory `--fits` uses are those `inspect --json` prints."""
    scheme = str(tte_models / "schemes" / "proxyless-w0.3-49kb.json")
    model = tte_models / "proxyless-w0.3.json"
    proc = _tinytrain("inspect", model, "--train", scheme, "--num-classes", NUM_CLASSES, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    inspected = json.loads(proc.stdout)
    f = memory_figures(str(model), scheme, num_classes=NUM_CLASSES)
    assert f.model_hash == inspected["model_hash"]
    assert (f.arena_bytes, f.trainable_param_bytes, f.flash_bytes) == tuple(
        inspected["memory"][k] for k in ("arena_bytes", "trainable_param_bytes", "flash_bytes"))
