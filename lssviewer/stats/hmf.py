"""Halo mass function per unit comoving volume.

Masses in Msun/h, bins in log10(M / (Msun/h)), volumes in (Mpc/h)^3, so number densities are in
(h/Mpc)^3. Compare FoF masses with FoF-calibrated fits (Watson et al. 2013,
:meth:`lssviewer.cosmology.Cosmology.mass_function`), not Tinker 2008 (spherical overdensity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.stats.binning import bin_centers


def mass_function(masses: np.ndarray, edges: np.ndarray, volume: float) -> dict[str, np.ndarray]:
    """Cumulative and differential mass functions of one catalog with Poisson errors.

    Args:
        masses: halo masses in Msun/h.
        edges: log10 M edges (histogram convention, last bin closed).
        volume: comoving volume in (Mpc/h)^3.

    Returns:
        ``cumulative``: n(>M) in (h/Mpc)^3 at the bin centres, ``M >= 10**center``;
        ``differential``: dn/dlog10M in (h/Mpc)^3 dex^-1 per bin; ``*_err``: ``sqrt(count)`` scaled
        the same way.
    """
    logm = np.log10(np.asarray(masses, dtype=np.float64))
    edges = np.asarray(edges, dtype=np.float64)
    counts, _ = np.histogram(logm, bins=edges)
    centers = bin_centers(edges)
    above = len(logm) - np.searchsorted(np.sort(logm), centers, side="left")
    width = np.diff(edges)
    return {
        "cumulative": above / volume,
        "cumulative_err": np.sqrt(above) / volume,
        "differential": counts / (volume * width),
        "differential_err": np.sqrt(counts) / (volume * width),
    }


def compute_hmf(catalogs: Sequence[HaloCatalog], edges: np.ndarray) -> dict:
    """Mass functions of each catalog: components ``cumulative`` and ``differential``."""
    keys = ("cumulative", "differential")
    vals: dict[str, list] = {k: [] for k in keys}
    errs: dict[str, list] = {k: [] for k in keys}
    for cat in catalogs:
        res = mass_function(cat.masses, edges, cat.volume)
        for k in keys:
            vals[k].append(res[k])
            errs[k].append(res[k + "_err"])
    return {"values": {k: np.array(v) for k, v in vals.items()},
            "errors": {k: np.array(v) for k, v in errs.items()},
            "meta": {"units": "(h/Mpc)^3 and (h/Mpc)^3 dex^-1", "cumulative_at": "bin centres",
                     "error": "poisson"}}
