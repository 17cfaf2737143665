"""The format registry: ``load(path)`` and ``save(catalogs, path)`` for every supported format.

A format is picked by (1) an explicit ``fmt`` name, (2) the file name (extension or pattern), and
(3) sniffing the first bytes when the extension is unknown. Every problem becomes a one-line
:class:`~lssviewer.errors.FormatError` naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import CatalogError, FormatError, LssviewerError


@dataclasses.dataclass(frozen=True)
class Format:
    """One file format: how to recognise, read and (optionally) write it."""

    name: str
    description: str
    module: str  # the lssviewer.io submodule implementing read/write/sniff/matches

    def _mod(self):
        import importlib

        return importlib.import_module(self.module)

    def matches(self, path: Path) -> bool:
        return bool(self._mod().matches(path))

    def sniff(self, path: Path, head: bytes) -> bool:
        return bool(self._mod().sniff(path, head))

    @property
    def readable(self) -> bool:
        return hasattr(self._mod(), "read")

    @property
    def writable(self) -> bool:
        return hasattr(self._mod(), "write")

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(self._mod().EXTENSIONS)

    def read(self, path: Path, **options: Any) -> list[HaloCatalog]:
        return self._mod().read(path, **options)

    def write(self, catalogs: Sequence[HaloCatalog], path: Path, **options: Any) -> None:
        self._mod().write(catalogs, path, **options)


#: All formats, in sniffing order.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("hdf5", "lssviewer native HDF5 (one catalog or a suite)", "lssviewer.io.hdf5"),
        Format("cm23", "CM23 arrays: *_halos.npy (n_sims, N, 7) + *_cosmology.csv", "lssviewer.io.cm23"),
        Format("npz", "NumPy .npz (one catalog)", "lssviewer.io.npz"),
        Format("csv", "CSV with a units header (one catalog)", "lssviewer.io.csv"),
        Format("rockstar", "Rockstar ASCII out_*.list (read only)", "lssviewer.io.rockstar"),
        Format("quijote", "Quijote FoF binary groups_XXX/group_tab_XXX.N (read only)", "lssviewer.io.quijote"),
        Format("vtp", "VTK PolyData .vtp for ParaView (write only)", "lssviewer.io.vtp"),
    )
}


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def writable_formats() -> list[Format]:
    return [f for f in FORMATS.values() if f.writable]


def _by_name(fmt: str, path: Path) -> Format:
    try:
        return FORMATS[fmt.lower()]
    except KeyError:
        raise FormatError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})", path) from None


def detect_format(path: str | os.PathLike[str], for_writing: bool = False) -> Format:
    """The format of ``path`` from its name, or (reading only) from its first bytes."""
    path = Path(path)
    for f in FORMATS.values():
        if (f.writable if for_writing else f.readable) and f.matches(path):
            return f
    if for_writing:
        exts = sorted({e for f in writable_formats() for e in f.extensions})
        raise FormatError(f"cannot tell the format to write from the extension "
                          f"'{_suffix(path) or '(none)'}' (writable: {', '.join(exts)})", path)
    head = _head(path)
    for f in FORMATS.values():
        if f.readable and f.sniff(path, head):
            return f
    raise FormatError(f"unknown format (extension '{_suffix(path) or '(none)'}' and content not "
                      f"recognised; known: {', '.join(FORMATS)})", path)


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _check_readable(path: Path, fmt: Format | None) -> None:
    if not path.exists():
        raise FormatError("no such file", path)
    if path.is_dir():
        if fmt is not None and fmt.name == "quijote":
            return
        if "quijote" in FORMATS and FORMATS["quijote"].matches(path):
            return
        raise FormatError("is a directory, not a catalog file", path)
    if path.stat().st_size == 0:
        raise FormatError("file is empty", path)


def _guard(path: Path, call: Callable[[], Any]) -> Any:
    """Run a reader/writer turning every failure into a one-line error naming ``path``."""
    try:
        return call()
    except LssviewerError as exc:
        raise exc.with_path(path) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start+1]!r})",
                          path) from None
    except (ValueError, TypeError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise FormatError(f"unreadable content ({text})", path) from None
    except PermissionError:
        raise FormatError("permission denied", path) from None
    except IsADirectoryError:
        raise FormatError("is a directory", path) from None
    except OSError as exc:
        raise FormatError(" ".join((exc.strerror or str(exc)).split()), path) from None


def load(path: str | os.PathLike[str], fmt: str | None = None, **options: Any) -> list[HaloCatalog]:
    """Read every catalog in ``path``.

    Args:
        path: a file (or a Quijote ``groups_XXX`` directory).
        fmt: force a format by name (see :data:`FORMATS`); default: detect.
        **options: format-specific options (e.g. ``box_size`` for a bare ``.npy``,
            ``mass_column`` for Rockstar, ``wrap`` to wrap positions into the box).

    Returns:
        A non-empty list of :class:`HaloCatalog`.
    """
    path = Path(path)
    f = _by_name(fmt, path) if fmt else None
    _guard(path, lambda: _check_readable(path, f))
    f = f or _guard(path, lambda: detect_format(path))
    if not f.readable:
        raise FormatError(f"format '{f.name}' can be written but not read", path)
    catalogs = _guard(path, lambda: f.read(path, **options))
    if not catalogs:
        raise FormatError("file holds no catalogs", path)
    return catalogs


def load_one(path: str | os.PathLike[str], index: int = 0, **options: Any) -> HaloCatalog:
    """Read one catalog (``index`` into the file's list; negative counts from the end)."""
    catalogs = load(path, **options)
    try:
        return catalogs[index]
    except IndexError:
        raise FormatError(f"catalog index {index} out of range (file holds {len(catalogs)})", path) from None


def save(catalogs: HaloCatalog | Sequence[HaloCatalog], path: str | os.PathLike[str],
         fmt: str | None = None, **options: Any) -> Format:
    """Write ``catalogs`` (one or many) to ``path`` atomically; returns the format used."""
    path = Path(path)
    if isinstance(catalogs, HaloCatalog):
        catalogs = [catalogs]
    catalogs = list(catalogs)
    if not catalogs:
        raise CatalogError("nothing to write (no catalogs)", path)
    f = _by_name(fmt, path) if fmt else _guard(path, lambda: detect_format(path, for_writing=True))
    if not f.writable:
        raise FormatError(f"format '{f.name}' is read-only", path)
    if path.is_dir():
        raise FormatError("is a directory", path)
    _guard(path, lambda: f.write(catalogs, path, **options))
    return f
