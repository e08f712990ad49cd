"""Tests for the photo-pool split, index and image normalisation logic (no network, no debs)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from gcodec.data import fetch, packages, sources
from gcodec.data.fetch import (
    MAX_SIDE,
    SOURCES,
    FetchError,
    Source,
    assign_splits,
    build_records,
    encode_photo,
    is_val_name,
    output_stem,
    summarize,
    write_index,
)


def _records(source: str, n: int) -> list[dict]:
    return [{"file": f"photos/{source}__img{i:04d}.png", "source": source} for i in range(n)]


def _png_bytes(size: tuple[int, int], color=(200, 30, 60), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, color)
    if mode == "RGB":  # add some texture so it is clearly not grayscale
        img.putpixel((0, 0), (0, 255, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- split


def test_is_val_name_is_deterministic_and_ignores_directory() -> None:
    names = [f"x__{i}.png" for i in range(200)]
    assert [is_val_name(n) for n in names] == [is_val_name(n) for n in names]
    assert all(is_val_name(n) == is_val_name(f"photos/{n}") for n in names)


def test_assign_splits_fraction_close_to_15_percent() -> None:
    out = assign_splits(_records("big", 2000))
    frac = sum(r["split"] == "val" for r in out) / len(out)
    assert 0.12 < frac < 0.18
    assert {r["split"] for r in out} == {"train", "val"}


def test_assign_splits_every_source_with_5_images_gets_val() -> None:
    # find a 5-name source where pure hashing picks no val image
    for k in range(1000):
        recs = _records(f"s{k}", 5)
        if not any(is_val_name(r["file"]) for r in recs):
            break
    else:  # pragma: no cover - statistically impossible
        pytest.fail("no all-train source found")
    out = assign_splits(recs + _records("tiny", 4))
    src = [r for r in out if r["source"] == f"s{k}"]
    assert sum(r["split"] == "val" for r in src) == 1
    tiny = [r for r in out if r["source"] == "tiny"]
    assert all(r["split"] == ("val" if is_val_name(r["file"]) else "train") for r in tiny)


def test_assign_splits_is_order_independent_and_pure() -> None:
    recs = _records("a", 30) + _records("b", 7)
    before = json.dumps(recs)
    first = {r["file"]: r["split"] for r in assign_splits(recs)}
    second = {r["file"]: r["split"] for r in assign_splits(list(reversed(recs)))}
    assert first == second
    assert json.dumps(recs) == before  # input not mutated


def test_summarize_counts() -> None:
    out = assign_splits(_records("a", 40) + _records("b", 3))
    summary = summarize(out)
    assert summary["count"] == 43
    assert summary["train"] + summary["val"] == 43
    assert summary["by_source"] == {"a": 40, "b": 3}


# --------------------------------------------------------------------------- index


def test_write_index_atomic_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "pool" / "index.json"
    recs = assign_splits(_records("a", 12))
    write_index(target, recs)
    write_index(target, recs)  # overwrite works too
    assert json.loads(target.read_text()) == recs
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.json"]  # no temp files


def test_build_records_reads_sizes_and_skips_unknown(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    src = Source("demo", "demo-pkg", "MIT", ("one", "two", "three"), {})
    (photos / f"{output_stem('demo', 'one')}.png").write_bytes(_png_bytes((40, 30)))
    (photos / f"{output_stem('demo', 'two')}.png").write_bytes(_png_bytes((8, 9)))
    (photos / "stranger__x.png").write_bytes(_png_bytes((5, 5)))
    recs = build_records(photos, [src])
    assert [r["file"] for r in recs] == ["photos/demo__one.png", "photos/demo__two.png"]
    assert (recs[0]["width"], recs[0]["height"]) == (40, 30)
    assert recs[0]["package"] == "demo-pkg" and recs[0]["licence"] == "MIT"


def test_source_table_is_consistent() -> None:
    stems = [output_stem(s.name, n) for s in SOURCES for n in s.names]
    assert len(stems) == len(set(stems))
    assert all(s.licence and s.package for s in SOURCES)
    assert len(stems) >= 550 and len({s.package for s in SOURCES}) >= 10


def test_ood_set_shares_no_package_or_source_with_the_pool_and_reserved_packages_are_nowhere() -> None:
    pool = {s.package for s in sources.POOL_SOURCES}
    ood = {s.package for s in sources.OOD_SOURCES}
    assert len(ood) >= 3 and sum(len(s.names) for s in sources.OOD_SOURCES) >= 40
    assert not pool & ood
    assert not {s.name for s in sources.POOL_SOURCES} & {s.name for s in sources.OOD_SOURCES}
    assert not (pool | ood) & sources.RESERVED_PACKAGES


def test_every_listed_source_is_pinned_where_its_registry_needs_it() -> None:
    for src in sources.POOL_SOURCES + sources.OOD_SOURCES:
        assert src.registry in packages.REGISTRIES
        if src.registry != "debian":
            assert src.version, src.name
        if src.registry == "pypi":
            assert src.archive in ("wheel", "sdist"), src.name
        assert len(src.names) == len(src.members) or any(p.endswith(".rcc") for p in src.members), src.name


def test_reserved_packages_are_refused_even_if_listed(tmp_path: Path) -> None:
    src = Source("mate", "mate-backgrounds", "GPL", ("a",), {"a.jpg": sources._single("a")})
    with pytest.raises(FetchError, match="reserved"):
        fetch._fetch_source(src, tmp_path, tmp_path, lambda _m: None)


def test_photo_names_are_stems_made_unique_by_their_folders() -> None:
    taken: set[str] = set()
    for path in ("a/b/x.jpg", "a/c/x.jpg", "d/c/x.png"):
        taken.add(sources.photo_name(path, taken))
    assert taken == {"x", "c-x", "d-c-x"}
    assert sources.photo_name("r.rcc::img/y.webp", set()) == "y"


def test_source_from_list_builds_file_and_rcc_extractors() -> None:
    which, src = sources.source_from_list({"name": "demo", "set": "ood", "package": "demo-pkg", "licence": "MIT",
                                           "files": ["usr/a.jpg", "usr/b/a.jpg"]})
    assert which == "ood" and src.names == ("a", "b-a") and set(src.members) == {"usr/a.jpg", "usr/b/a.jpg"}
    assert list(src.members["usr/b/a.jpg"]("usr/b/a.jpg", b"x")) == [("b-a", b"x")]
    _, rcc = sources.source_from_list({"name": "r", "set": "pool", "package": "p", "licence": "GPL",
                                       "container": "rcc", "files": ["x.rcc::i/one.webp", "x.rcc::i/two.webp"]})
    assert list(rcc.members) == ["x.rcc"] and rcc.names == ("one", "two")
    with pytest.raises(ValueError, match="container"):
        sources.source_from_list({"name": "z", "set": "pool", "package": "p", "licence": "L", "container": "tar",
                                  "files": []})


def test_cached_archives_are_found_by_registry_version_and_kind(tmp_path: Path) -> None:
    for name in ("scikit_image-0.22.0-cp311-cp311-manylinux.whl", "scikit_image-0.22.0.tar.gz",
                 "scikit_image-0.22.01.tar.gz", "scratch_1.4_all.deb", "vladmandic-face-api-1.7.15.tgz"):
        (tmp_path / name).write_bytes(b"")
    find = packages.find_archive
    assert find(tmp_path, "pypi", "scikit-image", "0.22.0", "wheel").name.endswith(".whl")
    assert find(tmp_path, "pypi", "scikit-image", "0.22.0", "sdist").name == "scikit_image-0.22.0.tar.gz"
    assert find(tmp_path, "pypi", "scikit-image", "0.23", "sdist") is None
    assert find(tmp_path, "debian", "scratch", None).name == "scratch_1.4_all.deb"
    assert find(tmp_path, "npm", "@vladmandic/face-api", "1.7.15").name == "vladmandic-face-api-1.7.15.tgz"
    with pytest.raises(FetchError, match="pinned"):
        packages.download_archive(tmp_path / "empty", "npm", "x", None, lambda _m: None)


def test_members_stream_from_wheels_and_npm_tarballs(tmp_path: Path) -> None:
    import tarfile
    import zipfile
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/a.png", b"A")
        zf.writestr("demo/b.png", b"B")
    assert dict(packages.iter_archive_members(wheel, ["demo/b.png"])) == {"demo/b.png": b"B"}
    tgz = tmp_path / "demo-1.0.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("package/img/c.jpg")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"C"))
    assert dict(packages.iter_archive_members(tgz, ["img/c.jpg"])) == {"img/c.jpg": b"C"}
    with pytest.raises(FetchError, match="lacks"):
        list(packages.iter_archive_members(wheel, ["demo/missing.png"]))


# --------------------------------------------------------------------------- images


def test_encode_photo_downscales_long_side() -> None:
    data, ext = encode_photo(_png_bytes((MAX_SIDE * 2, 1000)))
    img = Image.open(io.BytesIO(data))
    assert ext == ".png" and img.size == (MAX_SIDE, 500) and img.mode == "RGB"


def test_encode_photo_keeps_small_jpeg_bytes() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, format="JPEG", quality=90)
    data, ext = encode_photo(buf.getvalue())
    assert ext == ".jpg" and data == buf.getvalue()


def test_encode_photo_rejects_grayscale() -> None:
    with pytest.raises(ValueError):
        encode_photo(_png_bytes((32, 32), color=128, mode="L"))
    with pytest.raises(ValueError):
        encode_photo(_png_bytes((32, 32), color=(90, 90, 90), mode="RGBA"))


# --------------------------------------------------------------------------- driver


def test_missing_tool_raises_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages.shutil, "which", lambda _tool: None)
    with pytest.raises(FetchError, match="apt-get"):
        packages.download_deb(tmp_path, "no-such-package", lambda _m: None)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_fetch_source_from_local_deb_is_idempotent(tmp_path: Path) -> None:
    pkg = tmp_path / "pkgroot"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: demo-photos\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: t <t@example.com>\nDescription: demo\n"
    )
    (pkg / "usr/share/demo").mkdir(parents=True)
    (pkg / "usr/share/demo/a.png").write_bytes(_png_bytes((3000, 1500)))
    cache = tmp_path / "debs"
    cache.mkdir()
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg),
                    str(cache / "demo-photos_1.0_all.deb")], check=True, capture_output=True)
    src = Source("demo", "demo-photos", "MIT", ("a",),
                 {"usr/share/demo/a.png": sources._single("a")})
    photos = tmp_path / "pool" / "photos"
    photos.mkdir(parents=True)
    messages: list[str] = []
    assert fetch._fetch_source(src, photos, cache, messages.append) == 1
    assert Image.open(photos / "demo__a.png").size == (MAX_SIDE, MAX_SIDE // 2)
    assert fetch._fetch_source(src, photos, cache, messages.append) == 0  # already present
