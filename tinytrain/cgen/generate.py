"""Generate a model's C: model.h, model.c, model_data.h, model_data.c.

`emit_model` runs the op units' emitters (forward, and the training step when a program is
given) into one Emitter and returns an `Emission`: the statements, the arrays, the kernel
files the model needs and its flash figure, before anything is written. `Emission.write`
renders the templates (templates/*.j2) into a folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..dtypes import DTYPES
from ..errors import TinyTrainError
from ..ir import Graph, graph_macs
from ..ops import unit
from ..resources import templates_dir
from .cformat import CTYPES, c_float, format_array
from .emitter import ArenaSlot, Emitter

TEMPLATES = (("model.h.j2", "model.h"), ("model.c.j2", "model.c"),
             ("model_data.h.j2", "model_data.h"), ("model_data.c.j2", "model_data.c"))


@dataclass
class Emission:
    """The generated C of one model, before rendering."""
    graph: Graph
    em: Emitter
    forward: list[dict]
    memory: dict[str, Any]
    train: Any = None                  # tinytrain.training.emit.TrainEmit
    train_ctx: dict = field(default_factory=dict)

    @property
    def flash_bytes(self) -> int:
        return self.em.flash_bytes()

    def kernel_files(self) -> list[Path]:
        return self.em.kernel_files()

    def render(self) -> dict[str, str]:
        """{file name: text} of the four generated files."""
        g, em = self.graph, self.em
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), trim_blocks=True,
                                 lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                                 keep_trailing_newline=True)
        ctx = dict(version=__version__, name=g.name, model_hash=g.fingerprint(), macs=graph_macs(g),
                   memory=self.memory, forward=self.forward,
                   input=self._edge(g.inputs[0]), output=self._edge(g.outputs[0]),
                   views=sorted(em.views.values(), key=lambda v: (v.offset, v.cname)),
                   structs=list(em.structs.values()), states=em.states,
                   arrays=[dict(cname=a.cname, ctype=a.ctype, count=a.count, mutable=a.mutable,
                                comment=a.comment, body=format_array(a.values)) for a in em.arrays],
                   arrays_bytes=sum(a.nbytes for a in em.arrays),
                   simd_kernels=any(f.endswith(("_dsp", "_mve")) for f in em.functions),
                   train=self.train_ctx or None)
        return {out: env.get_template(tpl).render(**ctx) for tpl, out in TEMPLATES}

    def write(self, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for name, text in self.render().items():
            (out_dir / name).write_text(text)
            files.append(out_dir / name)
        return files

    def _edge(self, name: str) -> dict:
        t = self.graph.tensors[name]
        q = t.quant is not None and not t.quant.per_channel
        return dict(name=name, size=t.size, shape=list(t.shape), dtype=t.dtype, ctype=CTYPES[t.dtype],
                    view=self.em.view(name).text, scale=c_float(t.scale if q else 1.0),
                    zp=t.zero_point if q else 0)


def inference_arena(graph: Graph, offsets: dict[str, int]) -> dict[str, ArenaSlot]:
    """Arena slots of the activations of an inference plan (planner.Plan.offsets), and of the
    chosen kernel variants' scratch buffers."""
    from ..passes import kernel_scratch
    arena = {t.name: ArenaSlot(int(offsets[t.name]), t.dtype) for t in graph.activations()}
    arena.update({name: ArenaSlot(int(offsets[name]), "int8") for name in kernel_scratch(graph)})
    return arena


def emit_model(graph: Graph, arena: dict[str, ArenaSlot], memory: dict, *, simd: str = "none",
               program=None, lr: float = 0.01, momentum: float = 0.0,
               weight_decay: float = 0.0) -> Emission:
    """Emit the C of `graph` (and of the training step of `program`, on the same graph)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinyTrainError(f"model {graph.name!r}: code generation supports one input and one output "
                             f"(got {len(graph.inputs)} inputs, {len(graph.outputs)} outputs)")
    mutable = set()
    train = None
    if program is not None:
        from ..training.emit import trained_params
        mutable = {p.name for p in trained_params(program)}
    em = Emitter(graph, arena, simd=simd, mutable=mutable)
    if program is not None:
        from ..training.emit import TrainEmit
        from ..training import qas
        train = TrainEmit(program, em, lr=lr, momentum=momentum, weight_decay=weight_decay)
    forward = []
    for op in graph.ops:
        x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        step = dict(name=op.name, type=op.type, comment=f"{list(x.shape)} -> {list(y.shape)}",
                    lines=unit(op.type).emit(em, op), train_extra=[])
        if train is not None:
            step["train_extra"] = train.forward_extra(op)
        forward.append(step)
    em.view(graph.inputs[0])
    em.view(graph.outputs[0])
    emission = Emission(graph, em, forward, dict(memory))
    if train is not None:
        loss = train.loss()
        backward = [dict(name=b.op, type=train.ops[b.op].type, lines=train.backward(b)) for b in program.backward]
        emission.train = train
        emission.train_ctx = dict(
            scheme=program.scheme.describe(), scheme_name=program.scheme.name, loss_name=program.loss,
            lr=train.initial_hparams[0], momentum=train.initial_hparams[1],
            weight_decay=train.initial_hparams[2], state_init=train.state_init, loss=loss,
            update_mode=qas.update_mode(program.update), update_seed=f"0x{program.update_seed:08X}u",
            backward=backward, precision=program.precision, loss_scale=train.loss_scale_init(),
            params=[dict(name=p.name, cname=p.cname, nbytes=p.nbytes,
                         dtype_code=f"TT_DTYPE_{DTYPES[p.dtype].c_suffix.upper()}") for p in train.params])
    emission.memory["flash_bytes"] = emission.flash_bytes
    return emission
