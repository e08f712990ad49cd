"""Helpers shared by every ``gcz`` command module: one-line errors, the stderr console, devices.

Kept apart from :mod:`gcodec.cli` so that command modules (``gcodec.eval.cli``,
``gcodec.train.cli``) import these helpers, not each other: the import graph
flows one way, from :mod:`gcodec.cli` down.  Nothing here imports rich or
torch until it is used, so ``gcz decompress`` starts fast.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .errors import GczError

_console: Any = None


def stderr_console() -> Any:
    """The rich console on stderr (progress bars, tables, notes), created on first use."""
    global _console
    if _console is None:
        from rich.console import Console
        _console = Console(stderr=True, highlight=False)
    return _console


def fail(message: str, code: int = 1) -> None:
    """Print one error line on stderr and exit."""
    sys.stderr.write(f"gcz: error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def error_message(exc: BaseException) -> str | None:
    """The one-line message for a user-caused error, or None for a bug (re-raised with GCZ_DEBUG=1)."""
    if isinstance(exc, GczError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (lower --max-pixels or GCZ_MAX_PIXELS to refuse such inputs early)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{exc.strerror or exc}"
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like an interrupt (``finally`` blocks remove partial outputs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    raise Terminated(signum)


@contextmanager
def terminating_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only).

    A signal the caller ignores stays ignored (``nohup gcz ...`` keeps running when its terminal goes).
    """
    saved: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        try:
            saved[signum] = signal.signal(signum, _raise_terminated)
        except ValueError:  # not the main thread: leave signals alone
            break
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def interrupt_message(exc: BaseException) -> str:
    """``interrupted``, or ``terminated by SIGTERM`` for a :class:`Terminated`."""
    if isinstance(exc, Terminated):
        return f"terminated by {signal.Signals(exc.signum).name}"
    return "interrupted"


def interrupt_code(exc: BaseException) -> int:
    """The exit status of an interrupt: 128 + the signal's number (130 for Ctrl-C)."""
    return 128 + exc.signum if isinstance(exc, Terminated) else 130


def usage_line(exc: Any) -> str:
    """One line for a click usage error: the message, the command and where to find help."""
    message = " ".join(str(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command_path:
        path = ctx.command_path
        return f"{message} (see '{path} --help')"
    return message


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library and OS errors into one-line messages at the CLI boundary."""
    try:
        yield
    except KeyboardInterrupt as exc:
        fail(interrupt_message(exc), interrupt_code(exc))
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - never show a traceback to users
        message = error_message(exc)
        if message is not None:
            fail(message)
        if os.environ.get("GCZ_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (GCZ_DEBUG=1 shows details)", 2)


class Caught:
    """What :func:`user_errors_record` caught: ``message`` is None when nothing failed."""

    message: str | None = None


@contextmanager
def user_errors_record() -> Iterator[Caught]:
    """Like :func:`user_errors` but records the message so a batch can go on."""
    caught = Caught()
    try:
        yield caught
    except Exception as exc:  # noqa: BLE001
        message = error_message(exc)
        if message is None:
            if os.environ.get("GCZ_DEBUG"):
                raise
            message = f"internal error: {type(exc).__name__}: {exc}"
        caught.message = message


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu`` (imports torch: for training and evaluation)."""
    from .backends import torch_device

    return torch_device(device)


def encode_options(command: Any) -> Any:
    """The encode options that ``gcz compress`` and ``gcz eval`` share (one :class:`gcodec.profile.EncodeProfile`):
    ``--effort``, ``--refine`` (expert), ``--colour/--no-colour`` and ``--context/--no-context``."""
    from .effort import ENV_VAR, LEVELS, MAX_EFFORT
    from . import refine
    from .refine import MAX_STEPS

    levels = "; ".join(f"{i}: {s.describe()}" for i, s in enumerate(LEVELS))
    command = click.option(
        "--refine", "refine_steps", type=click.IntRange(0, MAX_STEPS), default=None, metavar="STEPS",
        help="Expert: refine the model's own encoder's latent by STEPS gradient steps through the decoder "
             "(gcz 0.8's encode, the same bytes; overrides --effort; 0: that encoder alone).")(command)
    command = click.option(
        "--effort", type=click.IntRange(0, MAX_EFFORT), default=None, metavar="0..%d" % MAX_EFFORT,
        help=f"How hard the encoder searches ({levels}) [default: ${ENV_VAR}, else gcz 0.8's encode, "
             f"--refine {refine.DEFAULT_STEPS}].")(command)
    command = click.option(
        "--context/--no-context", "context", default=True, show_default=True,
        help="Code the latent with context-adaptive models where that is smaller (about a fifth fewer "
             "bytes, the same image); --no-context writes files that gcz before 0.8 can read.")(command)
    return click.option(
        "--colour/--no-colour", "colour", default=True, show_default=True,
        help="Store a low-frequency colour correction where it pays for its bytes (one extra decode).")(command)
