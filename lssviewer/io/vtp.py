"""VTK XML PolyData (``.vtp``) export for ParaView users (write only; one catalog per file).

Points are halo positions [Mpc/h] with one vertex cell each; point data: ``velocity`` (3-vector,
km/s), ``speed`` [km/s], ``mass`` [Msun/h] and ``log10_mass``. Written as ASCII XML by lssviewer
itself (no VTK needed); field data carry box size, redshift and cosmology.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import FormatError
from lssviewer.io.atomic import atomic_path

EXTENSIONS = (".vtp",)


def matches(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def sniff(path: Path, head: bytes) -> bool:
    return False


def _values(arr: np.ndarray, fmt: str = "%.9g") -> str:
    return " ".join(fmt % v for v in np.asarray(arr).ravel())


def write(catalogs: Sequence[HaloCatalog], path: Path, **_: object) -> None:
    if len(catalogs) != 1:
        raise FormatError(f"a .vtp file holds one catalog, got {len(catalogs)} (pick one with --index)", path)
    cat = catalogs[0]
    n = len(cat)
    meta = {"box_size": cat.box_size, "redshift": cat.redshift,
            "cosmology": None if cat.cosmology is None else cat.cosmology.to_dict(), "name": cat.name}
    parts = [
        '<?xml version="1.0"?>',
        '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
        "<PolyData>",
        "<FieldData>",
        f'<Array type="String" Name="lssviewer_metadata" NumberOfTuples="1" format="ascii">'
        f"{_values(np.frombuffer(json.dumps(meta).encode(), np.uint8), '%d')} 0</Array>",
        "</FieldData>",
        f'<Piece NumberOfPoints="{n}" NumberOfVerts="{n}" NumberOfLines="0" NumberOfStrips="0" NumberOfPolys="0">',
        '<PointData Scalars="log10_mass" Vectors="velocity">',
        f'<DataArray type="Float64" Name="velocity" NumberOfComponents="3" format="ascii">'
        f"{_values(cat.velocities)}</DataArray>",
        f'<DataArray type="Float64" Name="speed" format="ascii">{_values(cat.speed)}</DataArray>',
        f'<DataArray type="Float64" Name="mass" format="ascii">{_values(cat.masses, "%.10g")}</DataArray>',
        f'<DataArray type="Float64" Name="log10_mass" format="ascii">{_values(cat.log10_mass)}</DataArray>',
        "</PointData>",
        "<Points>",
        f'<DataArray type="Float64" Name="Points" NumberOfComponents="3" format="ascii">'
        f"{_values(cat.positions, '%.10g')}</DataArray>",
        "</Points>",
        "<Verts>",
        f'<DataArray type="Int64" Name="connectivity" format="ascii">{_values(np.arange(n), "%d")}</DataArray>',
        f'<DataArray type="Int64" Name="offsets" format="ascii">{_values(np.arange(1, n + 1), "%d")}</DataArray>',
        "</Verts>",
        "</Piece>",
        "</PolyData>",
        "</VTKFile>",
    ]
    text = "\n".join(parts) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
