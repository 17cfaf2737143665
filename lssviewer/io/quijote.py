"""Quijote friends-of-friends binary catalogs (``groups_XXX/group_tab_XXX.N``), read only.

Binary layout of each ``group_tab_XXX.N`` file (little-endian, Gadget/P-FoF as used by Quijote):

    int32 Ngroups, int32 TotNgroups, int32 Nids, uint64 TotNids, uint32 Nfiles       (24 bytes)
    int32   GroupLen[Ngroups]         particles per group
    int32   GroupOffset[Ngroups]
    float32 GroupMass[Ngroups]        1e10 Msun/h
    float32 GroupPos[Ngroups, 3]      comoving kpc/h
    float32 GroupVel[Ngroups, 3]      km/s; peculiar velocity = GroupVel * (1 + z)
    float32 GroupTLen[Ngroups, 6]
    float64 GroupTMass[Ngroups, 6]

The catalog is split over ``Nfiles`` files ``.0 ... .Nfiles-1``. Box size and redshift are not
stored: defaults are Quijote's 1000 Mpc/h and the redshift of the snapshot number
(0: z=3, 1: z=2, 2: z=1, 3: z=0.5, 4: z=0); override with ``box_size``/``redshift``; pass
``omega_m``/``sigma_8`` for the cosmology (e.g. from Quijote's latin_hypercube_params.txt).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import Cosmology
from lssviewer.errors import CatalogError, FormatError

EXTENSIONS: tuple[str, ...] = ()
QUIJOTE_BOX = 1000.0
SNAPSHOT_REDSHIFTS = {0: 3.0, 1: 2.0, 2: 1.0, 3: 0.5, 4: 0.0}
_HEADER = np.dtype([("Ngroups", "<i4"), ("TotNgroups", "<i4"), ("Nids", "<i4"), ("TotNids", "<u8"),
                    ("Nfiles", "<u4")])
_BYTES_PER_GROUP = 4 + 4 + 4 + 12 + 12 + 24 + 48
_TAB = re.compile(r"group_tab_(\d{3})\.(\d+)$")
_DIR = re.compile(r"groups_(\d{3})$")


def matches(path: Path) -> bool:
    return bool(_TAB.search(path.name)) or (bool(_DIR.search(path.name)) and path.is_dir())


def sniff(path: Path, head: bytes) -> bool:
    return False  # recognised by name only


def _tab_files(path: Path) -> tuple[list[Path], int]:
    if path.is_dir():
        m = _DIR.search(path.name)
        if not m:
            raise FormatError("not a Quijote groups_XXX directory", path)
        snap = int(m.group(1))
        first = path / f"group_tab_{snap:03d}.0"
    else:
        m = _TAB.search(path.name)
        if not m:
            raise FormatError("not a Quijote group_tab_XXX.N file", path)
        snap = int(m.group(1))
        first = path.with_name(f"group_tab_{snap:03d}.0")
    if not first.exists():
        raise FormatError(f"missing {first.name}", first.parent)
    header = _read_header(first)
    nfiles = int(header["Nfiles"])
    if nfiles < 1 or nfiles > 100000:
        raise FormatError(f"implausible Nfiles = {nfiles} in the header", first)
    files = [first.with_name(f"group_tab_{snap:03d}.{i}") for i in range(nfiles)]
    for f in files:
        if not f.exists():
            raise FormatError(f"missing {f.name} (catalog split over {nfiles} files)", f.parent)
    return files, snap


def _read_header(path: Path) -> np.void:
    raw = path.read_bytes()[: _HEADER.itemsize]
    if len(raw) < _HEADER.itemsize:
        raise FormatError(f"file shorter than the {_HEADER.itemsize}-byte header", path)
    return np.frombuffer(raw, dtype=_HEADER, count=1)[0]


def _read_tab(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    header = np.frombuffer(data[: _HEADER.itemsize], dtype=_HEADER, count=1)[0] \
        if len(data) >= _HEADER.itemsize else None
    if header is None:
        raise FormatError(f"file shorter than the {_HEADER.itemsize}-byte header", path)
    ng = int(header["Ngroups"])
    expected = _HEADER.itemsize + ng * _BYTES_PER_GROUP
    if ng < 0 or len(data) != expected:
        raise FormatError(f"size {len(data)} bytes does not match Ngroups = {ng} "
                          f"(expected {expected}; truncated or not a group_tab file)", path)
    off = _HEADER.itemsize
    out = {}
    for name, dtype, width in (("len", "<i4", 1), ("offset", "<i4", 1), ("mass", "<f4", 1), ("pos", "<f4", 3),
                               ("vel", "<f4", 3), ("tlen", "<f4", 6), ("tmass", "<f8", 6)):
        count = ng * width
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=off)
        off += arr.nbytes
        out[name] = arr.reshape(ng, width) if width > 1 else arr
    return out


def read(path: Path, box_size: float | None = None, redshift: float | None = None,
         omega_m: float | None = None, sigma_8: float | None = None, wrap: bool = False,
         **_: object) -> list[HaloCatalog]:
    """Read every group_tab file of the snapshot into one HaloCatalog (masses 1e10 Msun/h -> Msun/h)."""
    path = Path(path)
    files, snap = _tab_files(path)
    parts = [_read_tab(f) for f in files]
    if redshift is None:
        if snap not in SNAPSHOT_REDSHIFTS:
            raise FormatError(f"snapshot {snap:03d} has no known Quijote redshift (pass redshift / --redshift)",
                              path)
        redshift = SNAPSHOT_REDSHIFTS[snap]
    box = QUIJOTE_BOX if box_size is None else box_size
    pos = np.concatenate([p["pos"] for p in parts]).astype(np.float64) / 1e3
    vel = np.concatenate([p["vel"] for p in parts]).astype(np.float64) * (1.0 + redshift)
    mass = np.concatenate([p["mass"] for p in parts]).astype(np.float64) * 1e10
    cosmo = Cosmology(omega_m=omega_m, sigma_8=sigma_8) if omega_m is not None else None
    try:
        cat = HaloCatalog(pos, vel, mass, box_size=box, redshift=redshift, cosmology=cosmo,
                          name=f"quijote_fof_{snap:03d}",
                          provenance={"source": str(path), "format": "quijote-fof", "snapnum": snap,
                                      "n_files": len(files)}, wrap=wrap)
    except CatalogError as exc:
        raise exc.with_path(path) from None
    return [cat]


def write_tab(path: Path, positions_kpc: np.ndarray, velocities_gadget: np.ndarray, masses_1e10: np.ndarray,
              lengths: np.ndarray, n_files: int = 1, tot_groups: int | None = None) -> None:
    """Write one group_tab file in the layout above (for tests and tools; not a user-facing format)."""
    ng = len(masses_1e10)
    header = np.zeros(1, dtype=_HEADER)
    header["Ngroups"], header["TotNgroups"] = ng, ng if tot_groups is None else tot_groups
    header["Nids"], header["TotNids"], header["Nfiles"] = int(lengths.sum()), int(lengths.sum()), n_files
    with open(path, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(np.asarray(lengths, "<i4").tobytes())
        fh.write(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype("<i4").tobytes())
        fh.write(np.asarray(masses_1e10, "<f4").tobytes())
        fh.write(np.asarray(positions_kpc, "<f4").reshape(ng, 3).tobytes())
        fh.write(np.asarray(velocities_gadget, "<f4").reshape(ng, 3).tobytes())
        fh.write(np.zeros((ng, 6), "<f4").tobytes())
        fh.write(np.zeros((ng, 6), "<f8").tobytes())
