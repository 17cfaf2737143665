"""NumPy ``.npz`` catalogs (read/write; one catalog per file; never pickled).

Keys: ``positions`` (N,3) Mpc/h, ``velocities`` (N,3) km/s, ``masses`` (N,) Msun/h, ``box_size``
[Mpc/h], ``redshift``, ``name`` (str), ``provenance`` (JSON str), and when known ``cosmology`` =
[omega_m, sigma_8 (NaN if unknown), omega_b, h, n_s]. Read with ``np.load(path, allow_pickle=False)``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError
from lssviewer.io.atomic import atomic_path

EXTENSIONS = (".npz",)
_COSMO_KEYS = ("omega_m", "sigma_8", "omega_b", "h", "n_s")


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def sniff(path: Path, head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path)


def write(catalogs: Sequence[HaloCatalog], path: Path, **_: object) -> None:
    if len(catalogs) != 1:
        raise FormatError(f"an .npz file holds one catalog, got {len(catalogs)} "
                          "(pick one with --index, or write HDF5 for a suite)", path)
    cat = catalogs[0]
    arrays = {
        "positions": cat.positions, "velocities": cat.velocities, "masses": cat.masses,
        "box_size": np.float64(cat.box_size), "redshift": np.float64(cat.redshift),
        "name": np.str_(cat.name), "provenance": np.str_(json.dumps(cat.provenance, default=str)),
    }
    if cat.cosmology is not None:
        d = cat.cosmology.to_dict()
        arrays["cosmology"] = np.array([np.nan if d[k] is None else d[k] for k in _COSMO_KEYS])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: numpy must not append ".npz" to the temp name
            np.savez_compressed(fh, **arrays)


def read(path: Path, wrap: bool = False, **_: object) -> list[HaloCatalog]:
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"not a readable .npz file ({' '.join(str(exc).split())[:120]})", path) from None
    with data:
        missing = [k for k in ("positions", "velocities", "masses", "box_size") if k not in data.files]
        if missing:
            raise FormatError(f".npz lacks array(s) {', '.join(missing)}", path)
        try:
            cosmo = None
            if "cosmology" in data.files:
                values = np.asarray(data["cosmology"], dtype=float).ravel()
                if len(values) != len(_COSMO_KEYS):
                    raise FormatError(f"'cosmology' has {len(values)} values, expected 5", path)
                cosmo = Cosmology.from_dict(dict(zip(_COSMO_KEYS, values.tolist(), strict=True)))
            prov = str(data["provenance"]) if "provenance" in data.files else "{}"
            try:
                provenance = json.loads(prov)
            except json.JSONDecodeError:
                provenance = {"provenance_text": prov}
            cat = HaloCatalog(
                data["positions"], data["velocities"], data["masses"],
                box_size=float(data["box_size"]),
                redshift=float(data["redshift"]) if "redshift" in data.files else 0.0,
                cosmology=cosmo, name=str(data["name"]) if "name" in data.files else path.stem,
                provenance=provenance, wrap=wrap,
            )
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FormatError(f"corrupt .npz content ({' '.join(str(exc).split())[:120]})", path) from None
        except CatalogError as exc:
            raise exc.with_path(path) from None
    return [cat]
