"""Layer tables and memory reports for `tinytrain inspect` (text and JSON)."""
from __future__ import annotations

from .ir import Graph, op_macs
from .planner import Plan


def layer_rows(graph: Graph) -> list[dict]:
    rows = []
    for op in graph.ops:
        params = sum(graph.tensors[t].size for t in op.inputs if graph.tensors[t].is_const)
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in op.attrs.items()
                 if k in ("stride", "pad", "kernel", "dilation", "activation", "conv_index")}
        rows.append(dict(
            name=op.name, op=op.type,
            inputs=[list(graph.tensors[t].shape) for t in op.inputs if not graph.tensors[t].is_const],
            output=list(graph.tensors[op.outputs[0]].shape),
            dtype=graph.tensors[op.outputs[0]].dtype,
            params=int(params), macs=int(op_macs(graph, op)), attrs=attrs))
    return rows


def plan_rows(plan: Plan) -> list[dict]:
    return [dict(r) for r in plan.table()]


def format_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.rjust(w) if c.replace(",", "").lstrip("-").isdigit() else c.ljust(w)
                               for c, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def format_layers(rows: list[dict]) -> str:
    return format_table(
        ["layer", "op", "input", "output", "dtype", "params", "MACs"],
        [[r["name"], r["op"], " ".join("x".join(map(str, s)) for s in r["inputs"]),
          "x".join(map(str, r["output"])), r["dtype"], f"{r['params']:,}", f"{r['macs']:,}"] for r in rows])


def format_plan(rows: list[dict]) -> str:
    return format_table(["tensor", "bytes", "first", "last", "offset"],
                        [[r["name"], f"{r['size']:,}", r["first"], r["last"], f"{r['offset']:,}"] for r in rows])


def format_memory(memory: dict) -> str:
    rows = []
    for k, v in memory.items():
        if isinstance(v, int):
            rows.append([k, f"{v:,}"])
        elif isinstance(v, str):    # e.g. the training update mode
            rows.append([k, v])
        elif isinstance(v, dict):   # a breakdown: one indented row per part
            rows.extend([f"  {k}.{part}", f"{n:,}" if isinstance(n, int) else str(n)] for part, n in v.items())
    return format_table(["memory", "bytes"], rows)
