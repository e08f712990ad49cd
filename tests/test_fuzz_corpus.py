"""Replay the fuzz seed corpus and every saved fuzz crash through the fuzz harness.

Each input must end in success or a :class:`gcodec.errors.GczError` (the
harness swallows those), never in another exception or a failed invariant.
Files in ``tests/fuzz_regressions/`` are named ``container-*``, ``entropy-*``,
``image-*`` or ``info-*`` after the target that found them. atheris is not needed: the harness imports
without it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_gcz", ROOT / "fuzz" / "fuzz_gcz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_gcz", module)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def _files() -> list[tuple[str, Path]]:
    """(target, file) of every seed and saved regression input."""
    files = [(target, path) for target, folder in (("container", "container"), ("entropy", "entropy"),
                                                   ("image", "image"), ("info", "container"))
             for path in sorted((CORPUS / folder).glob("*")) if path.is_file()]
    if REGRESSIONS.is_dir():
        files += [(path.name.split("-", 1)[0], path) for path in sorted(REGRESSIONS.iterdir())
                  if path.is_file() and path.name.split("-", 1)[0] in harness.TARGETS]
    return files


def _cases() -> list[tuple[str, Path, str]]:
    """(target, file, CRC mode): container inputs run with a repaired and with the raw CRC."""
    return [(target, path, crc) for target, path in _files()
            for crc in (harness.CRC_MODES if target in ("container", "info") else ("fix",))]


CASES = _cases()


def test_corpus_is_present_and_small():
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    assert len(list((CORPUS / "container").glob("*.gcz"))) >= 10
    assert len(list((CORPUS / "entropy").glob("*.bin"))) >= 3
    assert len(list((CORPUS / "image").glob("*"))) >= 10
    assert len(files) < 100 and sum(p.stat().st_size for p in files) < 200_000


@pytest.mark.parametrize(("target", "path", "crc"), CASES, ids=[f"{t}/{p.name}/{c}" for t, p, c in CASES])
def test_input_ends_in_success_or_gcz_error(target: str, path: Path, crc: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCZ_FUZZ_IGNORE", raising=False)
    harness.run_one(target, path.read_bytes(), crc)


def test_real_files_parse_and_decode():
    """The full-size seeds are valid files: they reach the entropy decoder, not just the parser."""
    for path in sorted((CORPUS / "container").glob("c*.gcz")):
        gcz = harness.container.read(path.read_bytes())
        symbols = harness.entropy.decode(gcz.payload, gcz.tables, gcz.latent_shape)
        assert symbols.shape == gcz.latent_shape


def test_entropy_seeds_round_trip():
    for path in sorted((CORPUS / "entropy").glob("*.bin")):
        case = harness.parse_entropy_input(path.read_bytes())
        symbols = harness.entropy.decode(case.payload, case.tables, case.shape)
        rebuilt = harness.build_entropy_input(case.tables, case.shape[1], case.shape[2],
                                              harness.entropy.encode(symbols, case.tables))
        assert rebuilt == path.read_bytes()
