"""Rockstar ASCII halo catalogs (``out_*.list``), read only.

The first line names the columns (``#ID DescID Mvir Vmax ... X Y Z VX VY VZ ...``); other ``#``
lines give the scale factor (``#a = ...``), the cosmology (``#Om = ...; Ol = ...; h = ...``) and
the box size (``#Box size: ... Mpc/h``). Units (Rockstar's): X Y Z comoving Mpc/h, VX VY VZ
physical peculiar km/s (what lssviewer calls peculiar velocities), masses Msun/h.

Options: ``mass_column`` (default ``Mvir``; e.g. ``M200c``: halos whose value in another mass
column is 0, i.e. undefined, are dropped and counted in ``provenance["dropped_zero_mass"]``),
``wrap`` (wrap positions into the box; Rockstar can write centres a hair outside ``[0, L)``),
``box_size``/``redshift``/``omega_m``/``sigma_8`` to override or complete the header.
Rockstar headers do not state sigma_8.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError
from lssviewer.io.text import is_probably_text, parse_table, read_text

EXTENSIONS = (".list",)
_REQUIRED = ("X", "Y", "Z", "VX", "VY", "VZ")
_FLOAT = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS or (path.name.startswith("out_") and path.suffix == ".list")


def sniff(path: Path, head: bytes) -> bool:
    if not is_probably_text(head):
        return False
    first = head.split(b"\n", 1)[0]
    return first.startswith(b"#ID") and b" X " in first and b"VX" in first


def _header_value(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text, flags=re.MULTILINE)
    return float(m.group(1)) if m else None


def read(path: Path, mass_column: str = "Mvir", wrap: bool = False, box_size: float | None = None,
         redshift: float | None = None, omega_m: float | None = None, sigma_8: float | None = None,
         **_: object) -> list[HaloCatalog]:
    """Read a Rockstar ``out_*.list`` file into one HaloCatalog (see module docstring)."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise FormatError("no Rockstar header line ('#ID DescID Mvir ...')", path)
    columns = lines[0].lstrip("#").split()
    missing = [c for c in (*_REQUIRED, mass_column) if c not in columns]
    if missing:
        raise FormatError(f"Rockstar header lacks column(s) {', '.join(missing)}", path)
    header = "\n".join(line for line in lines if line.startswith("#"))
    a = _header_value(rf"^#a\s*=\s*{_FLOAT}", header)
    box = box_size if box_size is not None else _header_value(rf"^#Box size:\s*{_FLOAT}", header)
    om = omega_m if omega_m is not None else _header_value(rf"^#Om\s*=\s*{_FLOAT}", header)
    h = _header_value(rf"h\s*=\s*{_FLOAT}", header)
    if box is None:
        raise FormatError("no '#Box size:' in the header (pass box_size / --box-size)", path)
    if redshift is None:
        if a is None:
            raise FormatError("no '#a = ' scale factor in the header (pass redshift / --redshift)", path)
        if a <= 0:
            raise FormatError(f"scale factor a = {a:g} is not positive", path)
        redshift = max(1.0 / a - 1.0, 0.0)
    body = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    table = parse_table([line for _, line in body], len(columns), path,
                        first_line_no=body[0][0] if body else 1)
    if len(table) == 0:
        raise FormatError("no halos in the file", path)
    col = {name: i for i, name in enumerate(columns)}
    provenance: dict[str, object] = {"source": str(path), "format": "rockstar", "mass_column": mass_column}
    mass = table[:, col[mass_column]]
    undefined = np.isfinite(mass) & (mass <= 0)
    if undefined.any() and mass_column != "Mvir":
        # e.g. M200c = 0 where Rockstar could not define it: such halos have no mass of that kind
        table = table[~undefined]
        provenance["dropped_zero_mass"] = int(undefined.sum())
        if len(table) == 0:
            raise FormatError(f"every halo has {mass_column} <= 0", path)
    cosmo = None
    if om is not None:
        kwargs = {"omega_m": om, "sigma_8": sigma_8}
        if h is not None:
            kwargs["h"] = h
        cosmo = Cosmology(**kwargs)
    try:
        cat = HaloCatalog(
            positions=table[:, [col["X"], col["Y"], col["Z"]]],
            velocities=table[:, [col["VX"], col["VY"], col["VZ"]]],
            masses=table[:, col[mass_column]],
            box_size=box, redshift=redshift, cosmology=cosmo, name=path.stem,
            provenance=provenance,
            wrap=wrap,
        )
    except CatalogError as exc:
        raise exc.with_path(path) from None
    return [cat]
