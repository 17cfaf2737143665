"""The Cuesta-Lazaro & Mishra-Sharma (2023) array layout (read and write).

``NAME_halos.npy``: float array (n_sims, N, 7) with columns x, y, z [Mpc/h], vx, vy, vz [km/s],
M [Msun/h] (a mass column whose values are all below 30 is taken as log10 M); ``NAME_cosmology.csv``:
one row per simulation with a header naming at least ``Omega_m`` and ``sigma_8`` (also read:
``Omega_b``, ``h``, ``n_s``; lssviewer also writes ``box_size`` and ``redshift`` columns).
When the CSV has no box size or redshift, the Quijote values (1000 Mpc/h, z = 0.5) are assumed for
``*_halos.npy`` files; pass ``box_size``/``redshift`` to override. A plain ``.npy`` of shape (N, 7)
or (n, N, 7) with no cosmology file needs ``box_size`` given. Loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io as _io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError
from lssviewer.io.atomic import atomic_path
from lssviewer.io.text import read_text

EXTENSIONS = (".npy",)
QUIJOTE_BOX = 1000.0
QUIJOTE_REDSHIFT = 0.5
_CSV_KEYS = {"omega_m": "omega_m", "om": "omega_m", "sigma_8": "sigma_8", "sigma8": "sigma_8",
             "s8": "sigma_8", "omega_b": "omega_b", "ob": "omega_b", "h": "h", "n_s": "n_s", "ns": "n_s",
             "box_size": "box_size", "redshift": "redshift"}


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def sniff(path: Path, head: bytes) -> bool:
    return head.startswith(b"\x93NUMPY")


def cosmology_path(path: Path) -> Path:
    """``X_halos.npy`` -> ``X_cosmology.csv``; ``X.npy`` -> ``X_cosmology.csv``."""
    stem = path.stem[: -len("_halos")] if path.stem.endswith("_halos") else path.stem
    return path.with_name(f"{stem}_cosmology.csv")


def _read_cosmology_csv(path: Path, n: int) -> list[dict[str, float]]:
    lines = [ln for ln in read_text(path).splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise FormatError("cosmology CSV is empty", path)
    delim = "," if "," in lines[0] else None
    names = [c.strip().lower() for c in (lines[0].split(delim) if delim else lines[0].split())]
    keys = [_CSV_KEYS.get(c) for c in names]
    if "omega_m" not in keys:
        raise FormatError(f"cosmology CSV header lacks Omega_m (found: {', '.join(names)[:80]})", path)
    try:
        table = np.loadtxt(_io.StringIO("\n".join(lines[1:])), delimiter=delim, ndmin=2)
    except ValueError as exc:
        raise FormatError(f"cosmology CSV has a non-numeric row ({' '.join(str(exc).split())[:80]})",
                          path) from None
    if table.shape != (n, len(names)):
        raise FormatError(f"cosmology CSV has {table.shape[0]} rows x {table.shape[1]} columns, "
                          f"expected {n} x {len(names)}", path)
    return [{k: float(v) for k, v in zip(keys, row, strict=True) if k} for row in table]


def read(path: Path, box_size: float | None = None, redshift: float | None = None, wrap: bool = False,
         **_: object) -> list[HaloCatalog]:
    path = Path(path)
    try:
        # read_array, not np.load: np.load would open a file starting with "PK" as an .npz archive
        with open(path, "rb") as fh:
            arr = np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError as exc:
        raise FormatError(f"not a numeric .npy array ({' '.join(str(exc).split())[:100]})", path) from None
    except (OSError, EOFError) as exc:
        raise FormatError(f"truncated or corrupt .npy file ({' '.join(str(exc).split())[:100]})", path) from None
    if not np.issubdtype(arr.dtype, np.number):
        raise FormatError(f"array dtype {arr.dtype} is not numeric", path)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != 7:
        raise FormatError(f"array has shape {arr.shape}, expected (n_sims, N, 7) or (N, 7): "
                          "x y z vx vy vz M", path)
    arr = arr.astype(np.float64)
    if np.all(np.isfinite(arr[..., 6])) and arr[..., 6].size and arr[..., 6].max() < 30:
        arr[..., 6] = 10.0 ** arr[..., 6]  # log10 M
    cpath = cosmology_path(path)
    rows: list[dict[str, float]] = [{} for _ in range(len(arr))]
    if cpath.exists():
        rows = _read_cosmology_csv(cpath, len(arr))
    out = []
    for i, (sim, row) in enumerate(zip(arr, rows, strict=True)):
        box = box_size if box_size is not None else row.get("box_size")
        z = redshift if redshift is not None else row.get("redshift")
        if box is None:
            if not path.stem.endswith("_halos"):
                raise FormatError("no box size known for a plain .npy array (pass box_size / --box-size)",
                                  path)
            box = QUIJOTE_BOX
        if z is None:
            z = QUIJOTE_REDSHIFT if path.stem.endswith("_halos") else 0.0
        cosmo = None
        if "omega_m" in row:
            cosmo = Cosmology.from_dict({k: v for k, v in row.items() if k not in ("box_size", "redshift")})
        try:
            out.append(HaloCatalog.from_array(sim, box, redshift=z, cosmology=cosmo, name=f"{path.stem}[{i}]",
                                              provenance={"source": str(path), "format": "cm23", "index": i},
                                              wrap=wrap))
        except CatalogError as exc:
            raise FormatError(f"simulation {i}: {exc.message}", path) from None
    return out


def write(catalogs: Sequence[HaloCatalog], path: Path, dtype: str = "float64", **_: object) -> None:
    """Write ``path`` (n_sims, N, 7) and its ``*_cosmology.csv``; all catalogs must have the same N."""
    sizes = {len(c) for c in catalogs}
    if len(sizes) != 1:
        raise FormatError(f"the CM23 layout needs the same number of halos in every catalog, got {sorted(sizes)}",
                          path)
    arr = np.stack([c.to_array() for c in catalogs]).astype(dtype)
    cpath = cosmology_path(path)
    lines = ["Omega_m,sigma_8,Omega_b,h,n_s,box_size,redshift"]
    for c in catalogs:
        d = c.cosmology.to_dict() if c.cosmology is not None else dict.fromkeys(
            ("omega_m", "sigma_8", "omega_b", "h", "n_s"))
        vals = [d["omega_m"], d["sigma_8"], d["omega_b"], d["h"], d["n_s"], c.box_size, c.redshift]
        lines.append(",".join("nan" if v is None else repr(float(v)) for v in vals))
    if any(c.cosmology is None for c in catalogs):
        raise FormatError("the CM23 layout needs each catalog's cosmology (omega_m, sigma_8)", path)
    with atomic_path(cpath) as tmp_c, atomic_path(path) as tmp:
        tmp_c.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
