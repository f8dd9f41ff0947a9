"""Test helper: run the `tinytrain` command line, in its own process or in this one.

    proc = tinytrain("inspect", path, "--json")            # a real process, as a user runs it
    proc = tinytrain_in_process("inspect", path)            # the same, without interpreter start-up

Both return a subprocess.CompletedProcess (returncode, stdout, stderr). In process, an
exception other than the CLI's own exit is re-raised: for a user it would be a traceback.
"""
from __future__ import annotations

import subprocess
import sys


def tinytrain(*args, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def tinytrain_in_process(*args) -> subprocess.CompletedProcess:
    import inspect

    from click.testing import CliRunner
    from tinytrain.cli import main
    # click < 8.2 mixes stderr into stdout unless told not to (the option is gone since)
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    result = CliRunner(**separate).invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
