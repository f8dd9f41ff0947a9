"""Shared by the semantic tests: the W3C reference files, and Descriptions as the firmware
of a build would report them (for boards and models that are not running here)."""
import json
from functools import lru_cache

from conftest import ROOT, TTE_MODELS

WOT = ROOT / ".." / "shared" / "wot"
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.tflite"
# The models every emitted TD is checked with: the example and the three reference models.
MODELS = {"digits_cnn": (DIGITS, "last:2", None),
          "mcunet-5fps": (TTE_MODELS / "mcunet-5fps.json", str(TTE_MODELS / "schemes" / "mcunet-5fps-49kb.json"), 10),
          "mbv2-w0.35": (TTE_MODELS / "mbv2-w0.35.json", str(TTE_MODELS / "schemes" / "mbv2-w0.35-49kb.json"), 10),
          "proxyless-w0.3": (TTE_MODELS / "proxyless-w0.3.json",
                             str(TTE_MODELS / "schemes" / "proxyless-w0.3-49kb.json"), 10)}


def w3c_documents() -> dict:
    """The W3C's TD 1.1 context for both TD context IRIs a tinytrain TD names."""
    from tinytrain.semantic.contexts import TD_CONTEXTS
    ctx = json.loads((WOT / "td-context-1.1.jsonld").read_text())
    return {iri: ctx for iri in TD_CONTEXTS}


@lru_cache(maxsize=None)
def compiled(model: str):
    """(graph, memory, number of trainable tensors) of a model as `build --train` compiles it."""
    import tinytrain
    path, scheme, classes = MODELS[model]
    m = tinytrain.compile(path, scheme=scheme, num_classes=classes)
    return m.graph, m.memory, sum(u.weight + u.bias for u in m.program.scheme.layers.values())


def description(model: str, board_name: str, steps: int = 0, trainable: bool = True):
    """The DESCRIBE reply the firmware of MODEL built for BOARD would give (with a training
    step, or an inference-only build of the same graph)."""
    from tinytrain import __version__
    from tinytrain import protocol as P
    from tinytrain.boards import load_board
    from tinytrain.link import Description
    graph, memory, n_params = compiled(model)
    board = load_board(board_name)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    s8 = lambda t: t.dtype == "int8"   # noqa: E731
    return Description(
        protocol_version=P.VERSION, max_payload=256,
        capabilities=(P.CAP_INFER | P.CAP_TRAIN | P.CAP_NV_STORE | P.CAP_HPARAMS) if trainable else P.CAP_INFER,
        model_hash=graph.fingerprint(), model_name=graph.name, board=board.name, firmware_version=__version__,
        core=board.core, work_unit=board.work_counter,
        input_dtype=P.DTYPE_S8 if s8(inp) else P.DTYPE_F32, output_dtype=P.DTYPE_S8 if s8(out) else P.DTYPE_F32,
        input_shape=tuple(inp.shape), output_shape=tuple(out.shape),
        input_scale=inp.scale if s8(inp) else 1.0, input_zero_point=inp.zero_point if s8(inp) else 0,
        output_scale=out.scale if s8(out) else 1.0, output_zero_point=out.zero_point if s8(out) else 0,
        arena_bytes=memory["arena_bytes"], flash_data_bytes=memory["flash_bytes"],
        sram_bytes=board.sram_usable_bytes, flash_bytes=board.flash_usable_bytes, nv_bytes=board.nv_bytes,
        link_ram_bytes=2048, trainable_bytes=memory["trainable_param_bytes"] if trainable else 0,
        num_params=n_params if trainable else 0, steps=steps,
        loaded_generation=0, mode=P.MODE_TRAIN, simd_kind=board.simd, reply_ring=4)


def device_td(model: str, board: str, port: str = "socket://127.0.0.1:5000", host: str = "host-a",
              crc: int = 0x1234, steps: int = 0, trainable: bool = True) -> dict:
    from tinytrain.semantic.device import DeviceState
    from tinytrain.semantic.td import thing_description
    d = description(model, board, steps, trainable)
    state = DeviceState(d, port, host, d.trainable_bytes, crc) if trainable else DeviceState(d, port, host)
    return thing_description(state)
