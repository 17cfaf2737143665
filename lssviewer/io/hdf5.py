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

Packed layout (format version 2, ``write(..., packed=True)``, ``lssviewer convert --packed``): a whole suite
in a few compressed arrays, for training suites that are committed or shipped (a 1632-box suite of 400 halos:
24 MB in float32 per-box groups, 11.5 MB packed at the default rounding, 9.9 MB at 0.01 Mpc/h and 1 km/s)::

    /                       attrs: format, format_version = 2, layout = "packed", lssviewer_version, n_catalogs
    /packed/
        offsets     (B + 1,)     int64: catalog i holds rows offsets[i]:offsets[i + 1]
        positions   (T, 3)       int32 fixed point: Mpc/h = value x attr scale (10^-position_decimals)
        velocities  (T, 3)       int32 fixed point: km/s = value x attr scale (10^-velocity_decimals)
        masses      (T,)         float32, Msun/h
        box_size, redshift, omega_m, sigma_8, omega_b, h, n_s   (B,) float64 (NaN: unknown)
        has_cosmology (B,) bool; name, provenance (B,) UTF-8 strings (provenance: JSON text)
        attrs: position_decimals, velocity_decimals

The rounding (default 10^-3 Mpc/h and 0.1 km/s) is far below the resolution of any N-body simulation
(the built-in one's force mesh is 1.6 Mpc/h). All arrays are gzip-compressed (with the shuffle filter).
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
FORMAT_VERSION = 2  # the newest version this code reads; per-box files are still written as version 1
PER_BOX_VERSION = 1
PACKED_VERSION = 2
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


def _set_root_attrs(f, n_catalogs: int, version: int = PER_BOX_VERSION) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = version
    f.attrs["lssviewer_version"] = __version__
    f.attrs["n_catalogs"] = n_catalogs


_MAX_DECIMALS = 6


def _fixed_point(values: np.ndarray, decimals: int, what: str) -> np.ndarray:
    """int64 values / 10^-decimals, refusing what int32 cannot hold (checked before any integer cast)."""
    scaled = np.rint(values * 10.0**decimals)
    if len(scaled) and not np.abs(scaled).max() < 2**31:
        raise CatalogError(f"{what} too large for a packed file at {decimals} decimals (|value| x 10^{decimals} "
                           f"must be < 2^31)")
    return scaled.astype(np.int64)


def _write_packed(f, catalogs: Sequence[HaloCatalog], position_decimals: int, velocity_decimals: int) -> None:
    """The packed layout (module docstring) of ``catalogs`` in the open file ``f``."""
    h5py = _h5py()
    for name, d in (("position_decimals", position_decimals), ("velocity_decimals", velocity_decimals)):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= _MAX_DECIMALS:
            raise CatalogError(f"{name} must be an integer in 0..{_MAX_DECIMALS}, got {d!r}")
    _set_root_attrs(f, len(catalogs), PACKED_VERSION)
    f.attrs["layout"] = "packed"
    f.create_group("catalogs")  # empty: a version-1 reader then stops at the version ("upgrade lssviewer")
    grp = f.create_group("packed")
    grp.attrs["position_decimals"] = int(position_decimals)
    grp.attrs["velocity_decimals"] = int(velocity_decimals)
    counts = np.array([len(c) for c in catalogs], dtype=np.int64)
    grp.create_dataset("offsets", data=np.concatenate([[0], np.cumsum(counts)]))
    # fixed point: integers in units of 10^-decimals (exact rounding, compresses well with shuffle + gzip)
    pos_q = _fixed_point(np.concatenate([c.positions for c in catalogs]), position_decimals, "positions")
    # rounding may land exactly on box_size: keep the [0, L) invariant (wrap, as the torus does)
    box_q = np.rint(np.repeat([c.box_size for c in catalogs], counts) * 10.0**position_decimals).astype(np.int64)
    pos_q = np.where(pos_q >= box_q[:, None], pos_q - box_q[:, None], pos_q)
    vel_q = _fixed_point(np.concatenate([c.velocities for c in catalogs]), velocity_decimals, "velocities")
    mass = np.concatenate([c.masses for c in catalogs]).astype(np.float32)
    if len(mass) and not (np.all(np.isfinite(mass)) and mass.min() >= np.finfo(np.float32).tiny):
        raise CatalogError("masses outside the float32 range of a packed file")
    gz = {"compression": "gzip", "shuffle": True}
    for key, arr, decimals in (("positions", pos_q.astype(np.int32), position_decimals),
                               ("velocities", vel_q.astype(np.int32), velocity_decimals), ("masses", mass, None)):
        ds = grp.create_dataset(key, data=arr, **(gz if len(arr) else {}))
        ds.attrs["units"] = _UNITS[key] + ("" if decimals is None else f" x 10^{int(decimals)} (fixed point)")
        if decimals is not None:
            ds.attrs["scale"] = 10.0**-decimals
    grp.create_dataset("box_size", data=np.array([c.box_size for c in catalogs], dtype=np.float64))
    grp.create_dataset("redshift", data=np.array([c.redshift for c in catalogs], dtype=np.float64))
    has = np.array([c.cosmology is not None for c in catalogs])
    grp.create_dataset("has_cosmology", data=has)
    for key in _COSMO_KEYS:
        col = [np.nan if c.cosmology is None or c.cosmology.to_dict().get(key) is None
               else float(c.cosmology.to_dict()[key]) for c in catalogs]
        grp.create_dataset(key, data=np.array(col, dtype=np.float64))
    text = h5py.string_dtype("utf-8")
    grp.create_dataset("name", data=np.array([c.name for c in catalogs], dtype=object), dtype=text, **gz)
    grp.create_dataset("provenance", dtype=text, **gz,
                       data=np.array([json.dumps(c.provenance, default=str) for c in catalogs], dtype=object))


def write(catalogs: Sequence[HaloCatalog], path: str | os.PathLike[str], dtype: str = "float64",
          packed: bool = False, position_decimals: int = 3, velocity_decimals: int = 1) -> None:
    """Write ``catalogs`` to ``path`` (atomically replacing any existing file).

    ``packed=True`` writes the compact packed layout (positions and velocities in fixed point with
    ``position_decimals`` / ``velocity_decimals`` decimals, masses float32; ``dtype`` is then ignored).
    """
    h5py = _h5py()
    catalogs = list(catalogs)
    if packed and not catalogs:
        raise CatalogError("a packed file needs at least one catalog")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if packed:
            _write_packed(f, catalogs, position_decimals, velocity_decimals)
            return
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
        with _open(path) as f:
            grp = f["packed"] if "packed" in f else None
            try:
                decimals = None if grp is None else (int(grp.attrs["position_decimals"]),
                                                     int(grp.attrs["velocity_decimals"]))
            except (KeyError, TypeError, ValueError):
                raise FormatError("packed file has no valid position_decimals / velocity_decimals", path) from None
        if decimals is not None:  # one set of arrays: rewrite it whole, keeping its rounding
            merged = read(path) + catalogs
            write(merged, path, packed=True, position_decimals=decimals[0], velocity_decimals=decimals[1])
            return len(merged)
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
    try:
        version = int(f.attrs.get("format_version", PER_BOX_VERSION))
    except (TypeError, ValueError):
        f.close()
        raise FormatError("bad format_version attribute", path) from None
    if version > FORMAT_VERSION:  # before the layout checks: a newer layout is named as such
        f.close()
        raise FormatError(f"format_version {version} is newer than this lssviewer "
                          f"understands ({FORMAT_VERSION}); upgrade lssviewer", path)
    if "catalogs" not in f and "packed" not in f:
        f.close()
        raise FormatError("HDF5 file has no 'catalogs' group (not an lssviewer catalog file)", path)
    return f


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160]


def count(path: str | os.PathLike[str]) -> int:
    """Number of catalogs in the file (cheap: reads no arrays)."""
    path = Path(path)
    with _open(path) as f:
        if "packed" in f:
            return len(_packed_offsets(f["packed"], path)) - 1
        return len(f["catalogs"])


def _packed_offsets(grp, path: Path) -> np.ndarray:
    """The validated ``offsets`` of a packed group (B + 1 non-decreasing row indices from 0, B >= 1)."""
    try:
        offsets = np.asarray(grp["offsets"][()], dtype=np.int64)
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise FormatError(f"packed file: cannot read 'offsets' ({_short(exc)})", path) from None
    if offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise FormatError("packed file: bad 'offsets' dataset", path)
    return offsets


def is_packed(path: str | os.PathLike[str]) -> bool:
    """True if the file at ``path`` uses the packed layout (format version 2)."""
    with _open(Path(path)) as f:
        return "packed" in f


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


_PACKED_ARRAYS = ("positions", "velocities", "masses")
_PACKED_COLUMNS = ("box_size", "redshift", "has_cosmology", *_COSMO_KEYS, "name", "provenance")


def _packed_columns(grp, n: int, path: Path) -> dict[str, np.ndarray]:
    """The per-catalog columns of a packed group, each checked to hold ``n`` values."""
    try:
        cols = {key: (grp[key].asstr()[()] if key in ("name", "provenance") else grp[key][()])
                for key in _PACKED_COLUMNS}
    except KeyError as exc:
        raise FormatError(f"packed file is missing a dataset ({_short(exc)})", path) from None
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(f"packed file: cannot read its catalog columns ({_short(exc)})", path) from None
    for key, col in cols.items():
        if np.shape(col) != (n,):
            raise FormatError(f"packed file: '{key}' holds {np.shape(col)} values for {n} catalogs", path)
    return cols


def _packed_cosmology(cols: dict[str, np.ndarray], i: int, path: Path) -> Cosmology | None:
    if not bool(cols["has_cosmology"][i]):
        return None
    try:
        return Cosmology.from_dict({k: float(cols[k][i]) for k in _COSMO_KEYS if np.isfinite(cols[k][i])})
    except LssviewerError as exc:
        raise FormatError(f"catalog {i}: bad cosmology ({exc.message})", path) from None


def _read_packed(grp, indices: Sequence[int] | None, path: Path) -> list[HaloCatalog]:
    """Catalogs (all, or those at ``indices``) of a packed group; a few catalogs are read row range by row range."""
    offsets = _packed_offsets(grp, path)
    n = len(offsets) - 1
    sel = list(range(n)) if indices is None else [int(i) for i in indices]
    if any(not -n <= i < n for i in sel):
        raise FormatError(f"catalog index out of range (file holds {n})", path)
    sel = [i % n for i in sel]
    cols = _packed_columns(grp, n, path)
    whole = len(sel) > n // 8  # else read only the selected rows
    try:
        datasets = {key: grp[key] for key in _PACKED_ARRAYS}
        if any(ds.shape[:1] != (offsets[-1],) for ds in datasets.values()):
            raise FormatError("packed file: array lengths do not match 'offsets'", path)
        scale = {key: float(ds.attrs.get("scale", 1.0)) for key, ds in datasets.items()}
        arrays = {key: ds[()] for key, ds in datasets.items()} if whole else None
        out = []
        for i in sel:
            rows = slice(int(offsets[i]), int(offsets[i + 1]))
            part = {key: np.asarray((arrays[key] if whole else datasets[key])[rows], dtype=np.float64) * scale[key]
                    for key in _PACKED_ARRAYS}
            try:
                provenance = json.loads(cols["provenance"][i])
            except json.JSONDecodeError:
                provenance = {"provenance_text": cols["provenance"][i]}
            try:
                out.append(HaloCatalog(part["positions"], part["velocities"], part["masses"],
                                       box_size=float(cols["box_size"][i]), redshift=float(cols["redshift"][i]),
                                       cosmology=_packed_cosmology(cols, i, path), name=str(cols["name"][i]),
                                       provenance=provenance))
            except CatalogError as exc:
                raise FormatError(f"catalog {i}: {exc.message}", path) from None
    except KeyError as exc:
        raise FormatError(f"packed file is missing a dataset ({_short(exc)})", path) from None
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(f"packed file: cannot read its arrays ({_short(exc)})", path) from None
    return out


def read(path: str | os.PathLike[str], indices: Sequence[int] | None = None) -> list[HaloCatalog]:
    """Read all catalogs (or those at ``indices``) from a native HDF5 file."""
    path = Path(path)
    with _open(path) as f:
        if "packed" in f:
            return _read_packed(f["packed"], indices, path)
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
        if "packed" in f:
            n = len(_packed_offsets(f["packed"], path)) - 1
            cols = _packed_columns(f["packed"], n, path)
            return [_packed_cosmology(cols, i, path) for i in range(n)]
        for key in sorted(f["catalogs"].keys()):
            attrs = f["catalogs"][key].attrs
            out.append(Cosmology.from_dict({k: float(attrs[k]) for k in _COSMO_KEYS if k in attrs})
                       if "omega_m" in attrs else None)
    return out


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS
