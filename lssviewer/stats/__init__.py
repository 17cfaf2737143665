"""Summary statistics of halo catalogs in periodic boxes, and comparisons between sets.

>>> from lssviewer import stats
>>> res = stats.compute("xi", catalogs)                  # StatResult, one row per catalog
>>> res.to_json()                                        # set mean and scatter, the CLI's --json
>>> sets = stats.compute_sets("knn", {"samples": gen, "simulations": sims})
>>> cmp = stats.compare(sets["samples"], sets["simulations"])    # residuals in sigma, chi^2
>>> fig = stats.plots.figure("knn", sets)                # matplotlib Figure (no pyplot)

Statistics (:data:`STATS` has their labels, axis labels, options and default bins):

* ``hmf``: cumulative and differential mass function per unit volume (Poisson errors);
* ``xi``: real-space 2PCF (natural estimator, analytic randoms, periodic);
* ``xi-rsd``: redshift-space 2PCF multipoles l = 0, 2, 4 about a box axis;
* ``pk``: power spectrum multipoles (CIC/TSC, window compensated, optional interlacing, shot
  noise subtracted and reported);
* ``vpdf``: PDFs of the speed and of the line-of-sight velocity;
* ``pairwise``: mean radial pairwise velocity v12(r) (negative = infall);
* ``knn``: k-nearest-neighbour CDFs from seeded random query points.

Units: positions and separations in comoving Mpc/h, velocities in km/s, masses in Msun/h,
wavenumbers in h/Mpc, power in (Mpc/h)^3, number densities in (h/Mpc)^3. Conventions and
references are in each module's docstring and in ``docs/statistics.md``.
"""

from __future__ import annotations

from typing import Any

from lssviewer.stats.compare import Comparison, compare
from lssviewer.stats.registry import STATS, StatSpec, compute, compute_sets, get_spec
from lssviewer.stats.result import StatResult

__all__ = ["STATS", "Comparison", "StatResult", "StatSpec", "compare", "compute", "compute_sets", "get_spec",
           "plots"]


def __getattr__(name: str) -> Any:
    if name == "plots":  # matplotlib is imported only when figures are wanted
        import importlib

        return importlib.import_module("lssviewer.stats.plots")
    raise AttributeError(f"module 'lssviewer.stats' has no attribute '{name}'")
