"""Bin edges: parsing, validation, centres and the data-independent defaults of each statistic.

Conventions shared by every statistic in :mod:`lssviewer.stats`:

* separation bins are right-closed, ``(edges[i], edges[i+1]]``, which is what
  :meth:`scipy.spatial.cKDTree.count_neighbors` counts (a pair at exactly ``edges[0]`` is not
  counted, so duplicate points never enter a bin starting at 0);
* histogram bins (masses, velocities) follow :func:`numpy.histogram` (left-closed, last bin closed);
* cumulative statistics (``n(>M)``, kNN-CDFs) are evaluated at the bin *centres*, so every
  statistic has one value per bin and one x coordinate per value.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lssviewer.errors import ParameterError


def parse_edges(text: str | Iterable[float]) -> np.ndarray:
    """Edges from a comma-separated string (``"0,10,20"``) or a sequence of numbers.

    Also accepts ``"start:stop:n"`` for ``n`` equal bins between ``start`` and ``stop``, and
    ``"log:start:stop:n"`` for ``n`` logarithmic bins (the CLI's ``--bins``).

    Raises:
        ParameterError: not numbers, fewer than two edges, or not strictly increasing.
    """
    if isinstance(text, str):
        s = text.strip()
        try:
            if s.startswith("log:"):
                start, stop, n = s[4:].split(":")
                edges = np.geomspace(float(start), float(stop), int(n) + 1)
            elif ":" in s:
                start, stop, n = s.split(":")
                edges = np.linspace(float(start), float(stop), int(n) + 1)
            else:
                edges = np.array([float(v) for v in s.replace(" ", "").split(",") if v != ""])
        except ValueError:
            raise ParameterError(f"bin edges must be comma-separated numbers (or start:stop:n), "
                                 f"got '{text}'") from None
    else:
        try:
            edges = np.asarray(list(text), dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"bin edges must be numbers, got {text!r}") from None
    return check_edges(edges)


def check_edges(edges: np.ndarray, *, lower: float | None = None, upper: float | None = None,
                what: str = "bin edges") -> np.ndarray:
    """Validate 1-d strictly increasing finite edges, optionally within ``[lower, upper]``."""
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2:
        raise ParameterError(f"{what} need at least two values, got {edges.size}")
    if not np.all(np.isfinite(edges)):
        raise ParameterError(f"{what} must be finite numbers")
    if np.any(np.diff(edges) <= 0):
        raise ParameterError(f"{what} must be strictly increasing, got {', '.join(f'{e:g}' for e in edges)}")
    if lower is not None and edges[0] < lower:
        raise ParameterError(f"{what} start at {edges[0]:g}, below the allowed minimum {lower:g}")
    if upper is not None and edges[-1] > upper:
        raise ParameterError(f"{what} end at {edges[-1]:g}, above the allowed maximum {upper:g}")
    return edges


def is_log_spaced(edges: np.ndarray, rtol: float = 1e-6) -> bool:
    """True when all edges are > 0 and their ratios are equal (and not also equally spaced)."""
    edges = np.asarray(edges, dtype=np.float64)
    if len(edges) < 3 or edges[0] <= 0:
        return False
    ratios = edges[1:] / edges[:-1]
    diffs = np.diff(edges)
    return bool(np.allclose(ratios, ratios[0], rtol=rtol) and not np.allclose(diffs, diffs[0], rtol=rtol))


def bin_centers(edges: np.ndarray) -> np.ndarray:
    """Geometric centres for log-spaced edges, arithmetic centres otherwise."""
    edges = np.asarray(edges, dtype=np.float64)
    if is_log_spaced(edges):
        return np.sqrt(edges[1:] * edges[:-1])
    return 0.5 * (edges[1:] + edges[:-1])


def separation_edges(box_size: float, r_max: float = 150.0, n_bins: int = 25) -> np.ndarray:
    """Default separation edges: ``n_bins`` equal bins on ``(0, min(r_max, L/4)]`` in Mpc/h."""
    top = min(float(r_max), float(box_size) / 4.0)
    return np.linspace(0.0, top, n_bins + 1)


def mass_edges(log10_masses: np.ndarray, max_bins: int = 30) -> np.ndarray:
    """Default log10 M edges covering the masses, 0.1 dex bins (wider when > ``max_bins``).

    Edges are rounded to multiples of 0.05 dex so that two sets with similar ranges share them.
    """
    m = np.asarray(log10_masses, dtype=np.float64)
    if m.size == 0:
        return np.linspace(12.0, 15.0, 31)
    lo = np.floor(m.min() * 20.0) / 20.0
    hi = np.ceil(m.max() * 20.0) / 20.0 + 1e-9
    width = 0.1
    while (hi - lo) / width > max_bins:
        width += 0.05
    n = max(1, int(np.ceil((hi - lo) / width - 1e-9)))
    return lo + width * np.arange(n + 1)


def velocity_edges(v_max: float = 2000.0, width: float = 50.0) -> np.ndarray:
    """Default velocity edges: symmetric ``[-v_max, v_max]`` km/s in ``width`` km/s bins."""
    n = int(round(2 * v_max / width))
    return np.linspace(-v_max, v_max, n + 1)


def wavenumber_edges(box_size: float, mesh: int, interlace: bool = False,
                     width_in_kf: float = 1.0) -> np.ndarray:
    """Default k edges in h/Mpc: bins of ``width_in_kf`` fundamental modes ``k_f = 2 pi / L``.

    They start at ``k_f / 2`` (so the first bin holds the fundamental modes) and stop at half the
    Nyquist frequency ``k_N = pi mesh / L`` (the whole Nyquist range when interlacing is used, which
    cancels the leading aliasing terms).
    """
    kf = 2.0 * np.pi / float(box_size)
    k_nyq = np.pi * mesh / float(box_size)
    k_top = k_nyq if interlace else 0.5 * k_nyq
    n = int(np.floor((k_top / kf - 0.5) / width_in_kf + 1e-9))
    return kf * (0.5 + width_in_kf * np.arange(max(n, 1) + 1))


def knn_edges(number_density: float, k_max: int, n_bins: int = 40) -> np.ndarray:
    """Default kNN radii edges in Mpc/h: ``n_bins`` equal bins on ``(0, r_top]``.

    ``r_top = 1.3 r_ws (k + 4 sqrt(k) + 4)^(1/3)`` with the Wigner-Seitz radius
    ``r_ws = (3 / (4 pi n))^(1/3)``: a Poisson field's k-th neighbour CDF already exceeds 0.9998
    at ``r_top / 1.3``; the margin leaves room for clustered fields, whose voids make the CDFs
    reach 1 more slowly.
    """
    r_ws = (3.0 / (4.0 * np.pi * float(number_density))) ** (1.0 / 3.0)
    r_top = 1.3 * r_ws * (k_max + 4.0 * np.sqrt(k_max) + 4.0) ** (1.0 / 3.0)
    return np.linspace(0.0, r_top, n_bins + 1)
