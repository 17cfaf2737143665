"""CSV halo catalogs with a units header (read and write; one catalog per file).

Layout written by lssviewer (values with 17 significant digits, so a round trip is lossless)::

    # lssviewer halo catalog (CSV), format_version 1
    # box_size = 25 Mpc/h
    # redshift = 0
    # name = out_163
    # cosmology = {"omega_m": 0.308, "sigma_8": null, "omega_b": 0.049, "h": 0.6781, "n_s": 0.9624}
    # provenance = {...}
    x [Mpc/h],y [Mpc/h],z [Mpc/h],vx [km/s],vy [km/s],vz [km/s],mass [Msun/h]
    3.14842,4.08677,...

Reading also accepts CSV files from elsewhere whose header names the columns x, y, z, vx, vy, vz
and mass (case-insensitive; units in brackets ignored; ``log10_mass``/``logM`` accepted as
log10 Msun/h), with the box size from a ``# box_size = ...`` line or the ``box_size`` option.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError
from lssviewer.io.atomic import atomic_path
from lssviewer.io.text import is_probably_text, parse_table, read_text

EXTENSIONS = (".csv",)
FORMAT_VERSION = 1
_COLUMNS = ("x", "y", "z", "vx", "vy", "vz", "mass")
_UNITS = ("Mpc/h", "Mpc/h", "Mpc/h", "km/s", "km/s", "km/s", "Msun/h")
_LOG_MASS = ("log10_mass", "log10m", "logm", "log_mass")


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def sniff(path: Path, head: bytes) -> bool:
    return is_probably_text(head) and head.startswith(b"# lssviewer halo catalog (CSV)")


def write(catalogs: Sequence[HaloCatalog], path: Path, **_: object) -> None:
    """Write one catalog (a CSV file holds one; pick one of a suite first)."""
    if len(catalogs) != 1:
        raise FormatError(f"a CSV file holds one catalog, got {len(catalogs)} "
                          "(pick one with --index, or write HDF5 for a suite)", path)
    cat = catalogs[0]
    cosmo = None if cat.cosmology is None else cat.cosmology.to_dict()
    header = [
        f"lssviewer halo catalog (CSV), format_version {FORMAT_VERSION}",
        f"box_size = {cat.box_size!r} Mpc/h",
        f"redshift = {cat.redshift!r}",
        f"name = {' '.join(cat.name.split())}",
        f"cosmology = {json.dumps(cosmo)}",
        f"provenance = {json.dumps(cat.provenance, default=str)}",
    ]
    columns = ",".join(f"{c} [{u}]" for c, u in zip(_COLUMNS, _UNITS, strict=True))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(f"# {line}\n" for line in header))
        fh.write(columns + "\n")
        np.savetxt(fh, cat.to_array(), fmt="%.17g", delimiter=",")


def _meta(header: list[str], key: str) -> str | None:
    for line in header:
        m = re.match(rf"#\s*{key}\s*=\s*(.*)$", line)
        if m:
            return m.group(1).strip()
    return None


def _float_meta(header: list[str], key: str, path: Path) -> float | None:
    value = _meta(header, key)
    if value is None:
        return None
    m = re.match(r"([-+0-9.eEinfaINFA]+)", value)
    try:
        return float(m.group(1)) if m else float(value)
    except ValueError:
        raise FormatError(f"header '{key}' is not a number: {value[:40]!r}", path) from None


def read(path: Path, box_size: float | None = None, redshift: float | None = None,
         omega_m: float | None = None, sigma_8: float | None = None, wrap: bool = False,
         **_: object) -> list[HaloCatalog]:
    path = Path(path)
    lines = read_text(path).splitlines()
    header = [line for line in lines if line.startswith("#")]
    rest = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    if not rest:
        raise FormatError("no column header line", path)
    names = [re.sub(r"\[.*?\]", "", c).strip().lower() for c in rest[0][1].split(",")]
    index = {n: i for i, n in enumerate(names)}
    log_mass = next((n for n in _LOG_MASS if n in index), None)
    missing = [c for c in _COLUMNS[:6] if c not in index]
    if "mass" not in index and log_mass is None:
        missing.append("mass")
    if missing:
        raise FormatError(f"CSV header lacks column(s) {', '.join(missing)} "
                          f"(found: {', '.join(names)[:80]})", path)
    table = parse_table([line for _, line in rest[1:]], len(names), path,
                        first_line_no=rest[1][0] if len(rest) > 1 else 2, delimiter=",")
    if len(table) == 0:
        raise FormatError("no halos in the file", path)
    box = box_size if box_size is not None else _float_meta(header, "box_size", path)
    if box is None:
        raise FormatError("no '# box_size = ...' header line (pass box_size / --box-size)", path)
    z = redshift if redshift is not None else (_float_meta(header, "redshift", path) or 0.0)
    cosmo = None
    cosmo_text = _meta(header, "cosmology")
    if cosmo_text and cosmo_text != "null":
        try:
            cosmo = Cosmology.from_dict(json.loads(cosmo_text))
        except (json.JSONDecodeError, AttributeError):
            raise FormatError("header 'cosmology' is not valid JSON", path) from None
    if omega_m is not None:
        cosmo = (cosmo or Cosmology(omega_m)).replace(omega_m=omega_m)
    if sigma_8 is not None and cosmo is not None:
        cosmo = cosmo.replace(sigma_8=sigma_8)
    prov_text = _meta(header, "provenance")
    try:
        provenance = json.loads(prov_text) if prov_text else {}
    except json.JSONDecodeError:
        provenance = {"provenance_text": prov_text}
    if not isinstance(provenance, dict):
        provenance = {"provenance_text": prov_text}
    masses = table[:, index["mass"]] if "mass" in index else 10.0 ** table[:, index[log_mass]]
    try:
        cat = HaloCatalog(
            positions=table[:, [index["x"], index["y"], index["z"]]],
            velocities=table[:, [index["vx"], index["vy"], index["vz"]]],
            masses=masses, box_size=box, redshift=z, cosmology=cosmo,
            name=_meta(header, "name") or path.stem, provenance=provenance, wrap=wrap,
        )
    except CatalogError as exc:
        raise exc.with_path(path) from None
    return [cat]
