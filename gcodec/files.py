"""Reading inputs and writing outputs safely: bounded reads, no-replace publishing, checked stdout.

* Inputs are read up to a byte limit (:func:`gcodec.limits.max_input_bytes`):
  a named input must be a regular file (a FIFO or a device is refused before
  it can block or stream forever), stdin is read in chunks and refused once it
  passes the limit.
* Outputs are written to a private temporary file in the target's folder and
  then published under their name with no-replace semantics (a hard link,
  which fails if the name exists), so a file that appeared at the target
  during the work is never replaced unless ``force``; with ``force`` only a
  regular file is ever replaced (never a device, a FIFO or a folder).  The
  temporary file is removed on any failure, a full disk included, and on
  SIGTERM / SIGHUP (the CLI turns them into exceptions).
* Writes to stdout are checked: a short write, a closed stdout or a reader
  that went away (broken pipe) is an error, not a silent truncation.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path

from . import limits
from .errors import GczInputError

STDIO = "-"
_CHUNK = 1 << 20


def read_input(name: str, kind: str = "image", limit: int | None = None) -> bytes:
    """The bytes of file ``name`` or of stdin for ``-``, at most ``limit`` bytes
    (default :func:`gcodec.limits.max_input_bytes` of ``kind``: ``image`` or ``gcz``)."""
    limit = limits.max_input_bytes(kind) if limit is None else limit
    if name == STDIO:
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise GczInputError("stdin is closed")
        return read_capped(stream.read, limit, "stdin")
    fd = _open_regular(name)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise GczInputError(f"{name}: {size} bytes exceed the input limit of {limit} bytes "
                                f"(raise it with {limits.INPUT_BYTES_ENV_VAR})")
        return read_capped(lambda n: os.read(fd, n), limit, name)
    finally:
        os.close(fd)


def _open_regular(name: str) -> int:
    """An fd of ``name`` opened for reading, refused unless it is a regular file (never blocks on a FIFO)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise GczInputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise GczInputError(f"{name}: is a directory") from None
    except PermissionError:
        raise GczInputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise GczInputError(f"{name}: cannot open ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise GczInputError(f"{name}: is a directory")
        raise GczInputError(f"{name}: not a regular file (a pipe, device or socket); give - to read stdin")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def read_capped(read, limit: int, name: str) -> bytes:  # noqa: ANN001 - any read(n) -> bytes
    """Read until EOF, refusing the input once it passes ``limit`` bytes."""
    chunks, total = [], 0
    while True:
        chunk = read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise GczInputError(f"{name}: input exceeds the limit of {limit} bytes "
                                f"(raise it with {limits.INPUT_BYTES_ENV_VAR})")


def check_input_file(path: Path, kind: str = "image", what: str | None = None) -> None:
    """Refuse ``path`` unless it is an existing regular file within the byte limit (nothing is read)."""
    what = what or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GczInputError(f"{what}: no such file") from None
    except OSError as exc:
        raise GczInputError(f"{what}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise GczInputError(f"{what}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise GczInputError(f"{what}: not a regular file (a pipe, device or socket)")
    limit = limits.max_input_bytes(kind)
    if st.st_size > limit:
        raise GczInputError(f"{what}: {st.st_size} bytes exceed the input limit of {limit} bytes "
                            f"(raise it with {limits.INPUT_BYTES_ENV_VAR})")


# ------------------------------------------------------------------ outputs
def check_writable(target: str, force: bool) -> None:
    """Refuse a target that exists (without ``force``), is not a regular file, or whose folder is missing."""
    if target == STDIO:
        return
    path = Path(target)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise GczInputError(f"{target}: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise GczInputError(f"{target} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise GczInputError(f"{target} exists and is not a regular file (a device, pipe or socket); "
                                "gcz replaces only regular files")
        if not force:
            raise GczInputError(f"{target} exists (use --force to overwrite)")
    if not path.parent.exists():
        raise GczInputError(f"{path.parent}: no such directory")


def write_output(target: str, data: bytes, force: bool = False) -> None:
    """Write ``data`` to stdout (``-``) or publish it as file ``target``; no partial file is ever left.

    Without ``force`` the file is published only if nothing exists under its name at that
    moment (a file created there meanwhile is kept and this is an error); with ``force`` a
    regular file is replaced atomically, anything else is refused.
    """
    if target == STDIO:
        write_stdout(data)
        return
    path = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)  # a full disk must fail here, not after the rename
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give outputs the usual mode
        if force:
            check_writable(target, True)
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path, data)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _publish_new(tmp: str, path: Path, data: bytes) -> None:
    """Give the complete file ``tmp`` the name ``path``, failing if that name exists."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise GczInputError(f"{path} exists (it appeared while gcz worked; use --force to overwrite)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
    # a file system without hard links: create the name exclusively, then fill it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise GczInputError(f"{path} exists (it appeared while gcz worked; use --force to overwrite)") from None
    try:
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "short write")
        view = view[written:]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to stdout, or raise GczInputError: stdout closed, a short write, a broken pipe."""
    stream = sys.stdout
    if stream is None or getattr(stream, "buffer", None) is None:
        raise GczInputError("stdout is closed: cannot write the output to -")
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        fd = None  # not a real file (an in-memory capture): write through the stream
    try:
        if fd is None:
            written = stream.buffer.write(data)
            stream.buffer.flush()
            if written is not None and written != len(data):
                raise GczInputError(f"stdout: short write ({written} of {len(data)} bytes)")
            return
        try:
            os.fstat(fd)
        except OSError:
            raise GczInputError("stdout is closed: cannot write the output to -") from None
        stream.flush()
        _write_all(fd, data)
    except BrokenPipeError:
        _silence_stdout()
        raise GczInputError("stdout: the reader closed the pipe before the whole output was written") from None
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise GczInputError("stdout is closed: cannot write the output to -") from None
        raise


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
