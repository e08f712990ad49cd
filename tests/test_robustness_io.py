"""Hostile inputs and outputs at the command line: bounded reads, no-replace outputs, signals, stdout,
one-line errors (usage errors included) and user text that rich must not read as markup."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import gcodec
from gcodec import container, files, limits, zoo
from gcodec.cli import main
from gcodec.errors import GczInputError

from conftest import photo_like
from test_cli import assert_clean_error, gcz

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None):
    """The CLI in process; ``env`` is set for the call."""
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return CliRunner().invoke(main, list(args), input=stdin)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def one_line(result) -> str:
    """The single 'gcz: error:' line of a CliRunner result (asserts there is exactly one, and no traceback)."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gcz: error: "), result.stderr
    assert "internal error" not in lines[0]
    return lines[0]


@pytest.fixture
def small_gcz(tiny_weights, tmp_path) -> Path:
    path = tmp_path / "small.gcz"
    path.write_bytes(gcodec.compress(photo_like(64, 64), model="gcz-c4", colour=False))
    return path


# ------------------------------------------------------------------ inputs (bounded, regular files)
@pytest.mark.parametrize("command", ["compress", "decompress", "info"])
def test_devices_and_fifos_are_refused_as_inputs(tiny_weights, tmp_path, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for source in ("/dev/zero", str(fifo)):  # a FIFO without a writer used to block forever
        line = one_line(run(command, source, "-o", str(tmp_path / "out")) if command != "info"
                        else run(command, source))
        assert "not a regular file" in line


def test_stdin_is_read_up_to_the_input_limit(tiny_weights, small_gcz, tmp_path):
    line = one_line(run("decompress", "-", "-o", str(tmp_path / "x.png"), stdin=b"\0" * 5000,
                        env={"GCZ_MAX_INPUT_BYTES": "4096"}))
    assert "exceeds the limit of 4096 bytes" in line
    assert run("decompress", "-", "-o", str(tmp_path / "y.png"), stdin=small_gcz.read_bytes()).exit_code == 0
    line = one_line(run("compress", str(small_gcz), "-o", str(tmp_path / "z.gcz"), env={"GCZ_MAX_INPUT_BYTES": "10"}))
    assert "exceed the input limit" in line


def test_endless_stdin_is_refused_within_bounded_memory(tiny_weights, tmp_path):
    """``gcz info - < /dev/zero`` under a 3 GiB address-space cap: refused at the 64 MiB .gcz limit."""
    with open("/dev/zero", "rb") as zero:
        start = time.monotonic()
        result = subprocess.run(["prlimit", f"--as={3 << 30}", sys.executable, "-m", "gcodec.cli", "info", "-"],
                                stdin=zero, capture_output=True, timeout=120, env=os.environ.copy())
    assert_clean_error(result)
    assert b"exceeds the limit of 67108864 bytes" in result.stderr
    assert time.monotonic() - start < 60


def test_input_limit_variable_is_checked():
    os.environ["GCZ_MAX_INPUT_BYTES"] = "lots"
    try:
        with pytest.raises(GczInputError, match="GCZ_MAX_INPUT_BYTES must be a positive integer"):
            limits.max_input_bytes()
    finally:
        del os.environ["GCZ_MAX_INPUT_BYTES"]


# ------------------------------------------------------------------ outputs: never replace, never partial
def test_a_file_that_appears_during_the_encode_is_not_replaced(tiny_weights, tmp_path, monkeypatch, photo_file):
    from gcodec import codec

    target = tmp_path / "out.gcz"
    real = codec.compress_loaded

    def racing(*args, **kwargs):  # another process creates the output while this one encodes
        target.write_bytes(b"theirs")
        return real(*args, **kwargs)

    monkeypatch.setattr(codec, "compress_loaded", racing)
    line = one_line(run("compress", str(photo_file), "-o", str(target)))
    assert "exists" in line and "--force" in line
    assert target.read_bytes() == b"theirs"
    assert not list(tmp_path.glob(".*.part"))
    assert run("compress", str(photo_file), "-o", str(target), "--force").exit_code == 0
    assert target.read_bytes()[:4] == container.MAGIC


def test_two_writers_of_one_output_one_wins_the_other_fails(tmp_path):
    target = tmp_path / "same.gcz"
    files.check_writable(str(target), False)  # both runs checked before either wrote
    files.write_output(str(target), b"first")
    with pytest.raises(GczInputError, match="exists"):
        files.write_output(str(target), b"second")
    assert target.read_bytes() == b"first"


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_force_never_replaces_what_is_not_a_regular_file(tiny_weights, small_gcz, tmp_path, kind):
    if kind == "device":  # a private copy of /dev/null: a regression must not replace the real one
        if os.geteuid() != 0:
            pytest.skip("creating a device node needs root")
        node = tmp_path / "null"
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        node = tmp_path / "fifo.png"
        os.mkfifo(node)
    line = one_line(run("decompress", str(small_gcz), "-o", str(node), "--force"))
    assert "not a regular file" in line
    assert node.is_char_device() if kind == "device" else node.is_fifo()
    with pytest.raises(GczInputError, match="not a regular file"):
        files.write_output(str(node), b"data", force=True)


def test_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        files.write_output(str(tmp_path / "x.png"), b"data" * 100)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_in_the_write_window_leaves_nothing_behind(tmp_path):
    """A real SIGTERM while the temporary file is being written: exit 143, one line, no .part file."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from gcodec import files
        from gcodec.cli_common import terminating_signals, user_errors
        real = files._write_all
        def slow(fd, data):
            real(fd, data[:10])
            print("writing", flush=True)
            time.sleep(60)
        files._write_all = slow
        with terminating_signals(), user_errors():
            files.write_output({str(tmp_path / 'out.png')!r}, b"x" * 1000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"writing\n"
    assert list(tmp_path.glob(".out.png.*.part"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.decode().strip() == "gcz: error: terminated by SIGTERM"
    assert list(tmp_path.iterdir()) == []


def test_sighup_is_handled_like_sigterm():
    from gcodec.cli_common import Terminated, interrupt_code, interrupt_message, terminating_signals

    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # SIG_IGN when the tests run under nohup
    try:
        with terminating_signals():
            with pytest.raises(Terminated) as caught:
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(1)
        assert interrupt_message(caught.value) == "terminated by SIGHUP"
        assert interrupt_code(caught.value) == 128 + signal.SIGHUP
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the handler in force before is back
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup: an ignored hang-up stays ignored
        with terminating_signals():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


# ------------------------------------------------------------------ stdout
def test_a_reader_that_closes_the_pipe_early_is_an_error(tiny_weights, tmp_path):
    """``gcz decompress x.gcz -o - --format ppm | head -c 100``: not a silent exit 0."""
    big = tmp_path / "big.gcz"  # 320x240: a 230 kB PPM, more than a pipe's buffer
    big.write_bytes(gcodec.compress(photo_like(240, 320), model="gcz-c4", colour=False))
    proc = subprocess.Popen([sys.executable, "-m", "gcodec.cli", "decompress", str(big), "-o", "-",
                             "--format", "ppm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, GCZ_DEBUG=""))
    head = proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert len(head) == 100
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("gcz: error: ")
    assert lines[0].endswith("stdout: the reader closed the pipe before the whole output was written")


def test_closed_stdout_is_an_error(tiny_weights, small_gcz):
    result = subprocess.run([sys.executable, "-m", "gcodec.cli", "decompress", str(small_gcz), "-o", "-"],
                            capture_output=False, stderr=subprocess.PIPE, stdout=None,
                            preexec_fn=lambda: os.close(1), timeout=120, env=os.environ.copy())
    assert result.returncode == 1
    lines = [line for line in result.stderr.decode().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("gcz: error: ")
    assert lines[0].endswith("stdout is closed: cannot write the output to -")


def test_short_writes_are_retried(monkeypatch, tmp_path):
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    real = os.write
    monkeypatch.setattr(files.os, "write", lambda f, data: real(f, bytes(data[:7]) if f == fd else data))
    files._write_all(fd, b"0123456789" * 10)
    os.close(fd)
    assert out.read_bytes() == b"0123456789" * 10


# ------------------------------------------------------------------ one line for every user error
@pytest.mark.parametrize("args", [["compress", "--refine", "-1", "x.png"], ["compress", "-c", "abc", "x.png"],
                                  ["compress", "--no-such-option", "x.png"], ["decompress"], ["frobnicate"],
                                  ["decompress", "--max-pixels", "１２３", "x.gcz"],
                                  ["decompress", "--max-pixels", "1" + "0" * 29, "x.gcz"]])
def test_usage_errors_are_one_line_with_exit_code_2(args):
    result = run(*args)
    assert result.exit_code == 2
    line = one_line(result)
    assert "--help" in line
    assert "Usage:" not in result.stderr


def test_usage_error_in_a_real_process_is_one_line():
    result = gcz("compress", "--refine", "-1", "x.png")
    assert_clean_error(result)
    assert result.returncode == 2


@pytest.mark.parametrize("value", ["１２３", "1" + "0" * 29, "1e29", "-5", "0", " "])
def test_pixel_limit_variable_takes_ascii_digits_within_the_format(value):
    os.environ["GCZ_MAX_PIXELS"] = value
    try:
        if value.strip():
            with pytest.raises(GczInputError, match="GCZ_MAX_PIXELS must be"):
                limits.max_pixels()
        else:
            assert limits.max_pixels() == limits.DEFAULT_MAX_PIXELS
    finally:
        del os.environ["GCZ_MAX_PIXELS"]
    os.environ["GCZ_MAX_PIXELS"] = "1_000_000"
    try:
        assert limits.max_pixels() == 1_000_000
    finally:
        del os.environ["GCZ_MAX_PIXELS"]


def _named_file(tmp_path: Path, name: str, model_name: str) -> Path:
    data = gcodec.compress(photo_like(40, 40), model="gcz-c4", colour=False)
    gcz = container.read(data)
    gcz.model_name = model_name
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(container.write(gcz))
    return path


@pytest.mark.parametrize("model_name,file_name", [("[/]", "plain.gcz"), ("gcz-c4", "q[/i].gcz"),
                                                  ("[bold red]", "x.gcz")])
def test_info_shows_user_text_literally(tiny_weights, tmp_path, model_name, file_name):
    path = _named_file(tmp_path, file_name, model_name)
    result = run("info", str(path), env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    assert f"{model_name}@" in result.stdout
    assert str(path) in result.stdout


def _manifest_dir(tmp_path: Path, doc) -> Path:
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder


def test_model_names_are_shown_literally_by_gcz_models(tiny_weights, tmp_path):
    import shutil

    entry = zoo.find_model("gcz-c4")
    folder = tmp_path / "w"
    folder.mkdir()
    shutil.copy(entry.path, folder / "m.pt")
    zoo.register_model(folder, "[bold red]", "m.pt", entry.sha256, entry.arch)
    result = run("models", env={"GCZ_WEIGHTS": f"{folder}{os.pathsep}{tiny_weights}"})
    assert result.exit_code == 0, result.output
    assert "[bold red]" in result.stdout


@pytest.mark.parametrize("doc,needle", [([1, 2], "JSON object"),
                                        ({"manifest_version": 1, "models": {"m": {"file": "m.pt", "sha256": "zz" * 32,
                                                                                  "arch": {}}}}, "hexadecimal"),
                                        ({"manifest_version": 1, "models": {"m\x07": {"file": "m.pt",
                                                                                      "sha256": "ab" * 32,
                                                                                      "arch": {}}}}, "printable")])
def test_broken_manifests_are_one_line(tiny_weights, tmp_path, doc, needle, photo_file):
    folder = _manifest_dir(tmp_path, doc)
    env = {"GCZ_WEIGHTS": f"{folder}{os.pathsep}{tiny_weights}"}
    assert needle in one_line(run("models", env=env))
    assert needle in one_line(run("compress", str(photo_file), "-o", str(tmp_path / "o.gcz"), env=env))


def test_a_model_name_cannot_move_the_graph_cache(tiny_weights):
    import dataclasses

    from gcodec.backends.onnx_net import cache_root, graph_dir

    entry = dataclasses.replace(zoo.find_model("gcz-c4"), name="../../escaped")
    folder = graph_dir(entry)
    assert folder.parent == cache_root() / "onnx"
    assert "escaped" not in folder.name and ".." not in folder.name
