"""Native lssviewer HDF5 format (``.h5`` / ``.hdf5``): one catalog or a whole suite per file.

Schema (format version 1), readable with plain h5py::

    /                       attrs: format = "lssviewer-halos", format_version = 1,
                                   lssviewer_version, n_catalogs
    /catalogs/000000/       one group per catalog, zero-padded index, in order
        positions   (N, 3)  comoving Mpc/h in [0, box_size)      attrs: units
        velocities  (N, 3)  peculiar km/s                         attrs: units
        masses      (N,)    Msun/h                                attrs: units
        attrs: box_size [Mpc/h], redshift, name, provenance (JSON text),
               omega_m, sigma_8 (NaN if unknown), omega_b, h, n_s  (absent if no cosmology)

Datasets are float64 by default (lossless) or float32 (``dtype="float32"``, for compact suites);
large ones are gzip-compressed. Writes are atomic; :func:`append` adds catalogs to an existing file by writing a
complete new copy and renaming it, so an interrupted append loses only the catalogs in flight.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lssviewer._version import __version__
from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError, LssviewerError
from lssviewer.io.atomic import atomic_path

FORMAT_NAME = "lssviewer-halos"
FORMAT_VERSION = 1
EXTENSIONS = (".h5", ".hdf5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_UNITS = {"positions": "Mpc/h (comoving)", "velocities": "km/s (peculiar)", "masses": "Msun/h"}
_COSMO_KEYS = ("omega_m", "sigma_8", "omega_b", "h", "n_s")
#: Arrays with more elements than this are gzip-compressed. Halo coordinates hardly compress, and for
#: the small per-box arrays of a suite the chunk index costs more than gzip saves (a 1632-box suite of
#: 400 halos: 20 KB per box compressed, 15 KB contiguous).
_COMPRESS_ABOVE = 16384


def sniff(path: Path, head: bytes) -> bool:
    """True if the file starts with the HDF5 signature."""
    return head.startswith(HDF5_SIGNATURE)


def _h5py():
    import h5py

    return h5py


def _write_catalog(group, cat: HaloCatalog, dtype: str) -> None:
    dt = np.dtype(dtype)
    pos = cat.positions.astype(dt)
    if dt != np.float64 and len(pos):
        # rounding to float32 may land exactly on box_size: keep the [0, L) invariant
        pos = np.minimum(pos, np.nextafter(dt.type(cat.box_size), dt.type(0)))
    arrays = {"positions": pos, "velocities": cat.velocities.astype(dt), "masses": cat.masses.astype(dt)}
    for key, arr in arrays.items():
        big = arr.size > _COMPRESS_ABOVE
        ds = group.create_dataset(key, data=arr, compression="gzip" if big else None, shuffle=big)
        ds.attrs["units"] = _UNITS[key]
    group.attrs["box_size"] = cat.box_size
    group.attrs["redshift"] = cat.redshift
    group.attrs["name"] = cat.name
    group.attrs["provenance"] = json.dumps(cat.provenance, default=str)
    if cat.cosmology is not None:
        for key, value in cat.cosmology.to_dict().items():
            group.attrs[key] = np.nan if value is None else float(value)


def _set_root_attrs(f, n_catalogs: int) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["lssviewer_version"] = __version__
    f.attrs["n_catalogs"] = n_catalogs


def write(catalogs: Sequence[HaloCatalog], path: str | os.PathLike[str], dtype: str = "float64") -> None:
    """Write ``catalogs`` to ``path`` (atomically replacing any existing file)."""
    h5py = _h5py()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _set_root_attrs(f, len(catalogs))
        grp = f.create_group("catalogs")
        for i, cat in enumerate(catalogs):
            _write_catalog(grp.create_group(f"{i:06d}"), cat, dtype)


def append(catalogs: Iterable[HaloCatalog], path: str | os.PathLike[str], dtype: str = "float64") -> int:
    """Append ``catalogs`` to the suite at ``path`` (created if missing); returns the new count.

    The append is atomic: a complete copy with the new catalogs replaces the old file.
    """
    h5py = _h5py()
    path = Path(path)
    catalogs = list(catalogs)
    if path.exists():
        count(path)  # validates the existing file before we build on it
    with atomic_path(path, copy_existing=True) as tmp, h5py.File(tmp, "a") as f:
        if "catalogs" not in f:
            _set_root_attrs(f, 0)
            f.create_group("catalogs")
        grp = f["catalogs"]
        start = len(grp)
        for i, cat in enumerate(catalogs):
            _write_catalog(grp.create_group(f"{start + i:06d}"), cat, dtype)
        f.attrs["n_catalogs"] = start + len(catalogs)
        f.attrs["lssviewer_version"] = __version__
        return start + len(catalogs)


def _open(path: Path):
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"not a readable HDF5 file ({_short(exc)})", path) from None
    if "catalogs" not in f:
        f.close()
        raise FormatError("HDF5 file has no 'catalogs' group (not an lssviewer catalog file)", path)
    version = f.attrs.get("format_version", FORMAT_VERSION)
    if int(version) > FORMAT_VERSION:
        f.close()
        raise FormatError(f"format_version {int(version)} is newer than this lssviewer "
                          f"understands ({FORMAT_VERSION}); upgrade lssviewer", path)
    return f


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160]


def count(path: str | os.PathLike[str]) -> int:
    """Number of catalogs in the file (cheap: reads no arrays)."""
    path = Path(path)
    with _open(path) as f:
        return len(f["catalogs"])


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_group(group, key: str, path: Path) -> HaloCatalog:
    where = f"catalog {key}"
    arrays = {}
    for name in ("positions", "velocities", "masses"):
        if name not in group:
            raise FormatError(f"{where} is missing the '{name}' dataset", path)
        try:
            arrays[name] = np.asarray(group[name][()], dtype=np.float64)
        except (OSError, ValueError, TypeError) as exc:
            raise FormatError(f"{where}: cannot read '{name}' ({_short(exc)})", path) from None
    attrs = group.attrs
    if "box_size" not in attrs:
        raise FormatError(f"{where} has no box_size attribute", path)
    cosmo = None
    if "omega_m" in attrs:
        try:
            cosmo = Cosmology.from_dict({k: float(attrs[k]) for k in _COSMO_KEYS if k in attrs})
        except LssviewerError as exc:
            raise FormatError(f"{where}: bad cosmology ({exc.message})", path) from None
    try:
        provenance = json.loads(_attr_str(attrs.get("provenance", "{}")))
    except json.JSONDecodeError:
        provenance = {"provenance_text": _attr_str(attrs["provenance"])}
    try:
        return HaloCatalog(arrays["positions"], arrays["velocities"], arrays["masses"],
                           box_size=float(attrs["box_size"]), redshift=float(attrs.get("redshift", 0.0)),
                           cosmology=cosmo, name=_attr_str(attrs.get("name", "")), provenance=provenance)
    except CatalogError as exc:
        raise FormatError(f"{where}: {exc.message}", path) from None


def read(path: str | os.PathLike[str], indices: Sequence[int] | None = None) -> list[HaloCatalog]:
    """Read all catalogs (or those at ``indices``) from a native HDF5 file."""
    path = Path(path)
    with _open(path) as f:
        grp = f["catalogs"]
        keys = sorted(grp.keys())
        if not keys:
            raise FormatError("file holds no catalogs", path)
        if indices is not None:
            try:
                keys = [keys[i] for i in indices]
            except IndexError:
                raise FormatError(f"catalog index out of range (file holds {len(keys)})", path) from None
        return [_read_group(grp[k], k, path) for k in keys]


def read_cosmologies(path: str | os.PathLike[str]) -> list[Cosmology | None]:
    """Cosmology of each catalog, without reading the arrays (for suite listings and resumes)."""
    path = Path(path)
    out: list[Cosmology | None] = []
    with _open(path) as f:
        for key in sorted(f["catalogs"].keys()):
            attrs = f["catalogs"][key].attrs
            out.append(Cosmology.from_dict({k: float(attrs[k]) for k in _COSMO_KEYS if k in attrs})
                       if "omega_m" in attrs else None)
    return out


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS
