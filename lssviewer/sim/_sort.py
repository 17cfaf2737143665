"""Compiled counting sort shared by the particle-mesh painter (particles by slab) and the FoF cell list."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def counting_sort(keys, nbins):  # pragma: no cover - compiled
    """Stable order of ``keys`` (ints in [0, nbins)) and the start of each bin in that order (nbins + 1)."""
    n = keys.shape[0]
    start = np.zeros(nbins + 1, np.int64)
    for i in range(n):
        start[keys[i] + 1] += 1
    for b in range(nbins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        b = keys[i]
        order[fill[b]] = i
        fill[b] += 1
    return order, start
