"""The three int8 models of the 256KB paper import, plan, compile, and the generated C
gives exactly the numpy reference's int8 outputs."""
import numpy as np
import pytest

import tinytrain
from tinytrain import cflags
from tinytrain.boards import load_board
from tinytrain.frontends import load_model
from tinytrain.hostmodel import HostModel
from tinytrain.ir import graph_macs
from tinytrain.planner import check_plan, graph_buffers, lower_bound, plan_graph
from tinytrain.refops import run_graph

from conftest import REFERENCE_MODELS


@pytest.fixture(scope="module", params=REFERENCE_MODELS)
def graph(request, tte_models):
    return load_model(tte_models / f"{request.param}.json")


def test_plan_is_valid_and_reuses_memory(graph):
    buffers, aliases = graph_buffers(graph)
    plan = plan_graph(graph)
    check_plan(buffers, plan)
    assert lower_bound(buffers, aliases) <= plan.arena_bytes
    # The paper's models must fit far below the naive sum of every activation.
    assert plan.arena_bytes < 0.3 * sum(b.size for b in buffers)


def test_generated_c_equals_numpy_reference(graph, tmp_path):
    host = HostModel(graph, tmp_path)
    x = np.random.default_rng(7).integers(-128, 128, size=(3, 128, 128, 3), dtype=np.int8)
    got = host.run(x)
    for i in range(len(x)):
        want = run_graph(graph, {graph.inputs[0]: x[i:i + 1]})[graph.outputs[0]].reshape(-1)
        np.testing.assert_array_equal(got[i], want, err_msg=f"sample {i}")
    # Outputs must not be degenerate (all clamped) for the comparison to mean something.
    assert len(np.unique(got)) > 20
    assert graph_macs(graph) > 10_000_000


def test_generated_c_compiles_for_cortex_m4(graph, tmp_path):
    import shutil
    import subprocess
    from tinytrain.hostbuild import include_dirs
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    tinytrain.compile(graph, passes=False).write_c(tmp_path)
    for src in ("model.c", "model_data.c"):
        subprocess.run([cc, *cflags.cross(load_board("mps2-an386")), f"-I{tmp_path}",
                        *[f"-I{d}" for d in include_dirs()], "-c", str(tmp_path / src),
                        "-o", str(tmp_path / (src + ".o"))], check=True)
