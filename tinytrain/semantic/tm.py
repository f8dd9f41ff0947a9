"""Thing Models (W3C WoT TD 1.1) of the boards, from boards/*.json.

A board's Thing Model is the template of every tinytrain device on that board: the
affordances a device TD has (without forms: the gateway adds them) and the board itself
as a `tt:Board` node with the figures the fit check of `tinytrain build` uses (usable SRAM
and flash, stack, runtime and code reserves). Device TDs link to it (`links`, rel "type")
and name the same board node (`tt:board`; the TM: `tt:forBoard`), so the registry can answer which boards, and
which devices, can take a model.
"""
from __future__ import annotations

from .. import __version__
from ..boards import Board, list_boards, load_board
from ..project import CODE_FLASH_BYTES, RUNTIME_SRAM_BYTES, STACK_RESERVE_BYTES
from . import vocabulary as V
from .contexts import document_context
from .td import SECURITY, SECURITY_DEFINITIONS, SECURITY_NOTE, affordances


def board_node(board: Board) -> dict:
    """The `tt:Board` node: the board's facts and the fit check's reserves on it."""
    return {
        "@id": V.BOARD_IRI + board.name, "@type": "tt:Board",
        "tt:boardName": board.name, "tt:core": board.core, "tt:clockHz": int(board.clock_hz),
        "tt:sramUsableBytes": int(board.sram_usable_bytes), "tt:flashUsableBytes": int(board.flash_usable_bytes),
        "tt:sramBytes": int(board.sram_bytes), "tt:flashBytes": int(board.flash_bytes),
        "tt:nvBytes": int(board.nv_bytes),
        "tt:stackReserveBytes": STACK_RESERVE_BYTES,
        "tt:runtimeSramBytes": RUNTIME_SRAM_BYTES[board.family],
        "tt:codeFlashBytes": CODE_FLASH_BYTES[board.family],
        "tt:fpu": board.fpu, "tt:simdKind": board.simd, "tt:emulated": board.emulated,
    }


def thing_model(board: Board | str) -> dict:
    board = load_board(board) if isinstance(board, str) else board
    props, actions, events = affordances()
    return {
        "@context": document_context(),
        "@type": "tm:ThingModel",
        "id": V.THING_MODEL_IRI + board.name,
        "title": f"tinytrain device on {board.name}",
        "description": f"A device running tinytrain firmware on {board.title}. " + SECURITY_NOTE,
        "version": {"model": __version__},
        "securityDefinitions": SECURITY_DEFINITIONS,
        "security": SECURITY,
        "tt:forBoard": board_node(board),
        "properties": props, "actions": actions, "events": events,
    }


def thing_models() -> list[dict]:
    return [thing_model(b) for b in list_boards()]
