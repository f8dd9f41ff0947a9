"""Inference figures of the three reference models of the 256KB paper.

Prints, per model: MACs, our peak inference arena (op by op; the planner's lower bound
for that schedule; and with the memory passes: fused pointwise+depthwise and in-place
depthwise), the naive plan (the sum of all activation tensors), the flash of constants,
and the time to import + plan + generate C (+ compile with the host gcc). Run: python bench/bench_inference.py [--json]
"""
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinytrain  # noqa: E402
from tinytrain.frontends import load_model  # noqa: E402
from tinytrain.hostbuild import compile_host  # noqa: E402
from tinytrain.ir import graph_macs  # noqa: E402
from tinytrain.passes import optimize_for_memory  # noqa: E402
from tinytrain.planner import graph_buffers, lower_bound, naive_bytes, plan_graph  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")


def measure(name: str) -> dict:
    path = ROOT / ".." / "shared" / "reference" / "tte-models" / f"{name}.json"
    t0 = time.perf_counter()
    graph = load_model(path)
    compiled = tinytrain.compile(graph, passes=False)
    plan = compiled.plan
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write_c(Path(tmp))
        t1 = time.perf_counter()
        compile_host(Path(tmp), kernels=compiled.kernel_files(), cached=False)
        t2 = time.perf_counter()
    buffers, aliases = graph_buffers(graph)
    fused_arena = plan_graph(optimize_for_memory(graph)).arena_bytes
    return dict(model=name, macs=graph_macs(graph), arena_bytes=plan.arena_bytes, fused_arena_bytes=fused_arena,
                lower_bound_bytes=lower_bound(buffers, aliases), naive_bytes=naive_bytes(buffers, aliases),
                flash_bytes=compiled.memory["flash_bytes"], planner=plan.algorithm,
                generate_s=round(t1 - t0, 3), gcc_s=round(t2 - t1, 3))


def main():
    rows = [measure(m) for m in MODELS]
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
        return
    print(format_table(
        ["model", "MACs", "arena B (ours)", "lower bound B", "arena B, memory passes", "naive B (sum of activations)",
         "flash B", "import+plan+codegen s", "host gcc s"],
        [[r["model"], f"{r['macs']:,}", f"{r['arena_bytes']:,}", f"{r['lower_bound_bytes']:,}",
          f"{r['fused_arena_bytes']:,}",
          f"{r['naive_bytes']:,}", f"{r['flash_bytes']:,}", r["generate_s"], r["gcc_s"]] for r in rows]))


if __name__ == "__main__":
    main()
