"""Zoomed 2-D likelihood grids: find the peak on a coarse grid over the prior, then scan a window around it.

A likelihood much narrower than the prior fills a few nodes of a P x P grid over the whole prior box: the
built-in model's 2-D 68 % profile intervals are 0.03-0.04 wide in Omega_m (a tenth of the prior; its 1-D
conditional ones ~0.016), so an 11 x 11 grid has nodes ~2 standard deviations apart and the contours fill a
small corner of the picture. Its ELBO is smooth enough that the bicubic interpolant of such a grid already gives
the zoomed grid's MAP and intervals (to ~1e-3 on held-out boxes, docs/model.md), but a sharper likelihood (a
bigger catalog, a better model) would not be resolved, and the contours are drawn from a handful of nodes.
:func:`zoomed_grid_2d` scans in stages instead, for about the same number of full-cost points:

0. a coarse grid over the prior box (default 7 x 7, few noise draws: it only has to find the peak);
1. a window around the peak, scanned with P x P points and the full number of noise draws: the 99 % region of
   the coarse grid's bicubic interpolant, padded (:func:`window`), or for a peak narrower than a coarse step
   ``n_sigma`` standard deviations of a quadratic fit each way; clipped to the prior;
2. if the window cuts the likelihood (its 99 % region, the nodes less than :data:`EDGE_DEFICIT` below the
   maximum, reaches an edge that is not the prior's) or the region fills too little of it (coarse resolution),
   once more, on the region's padded bounding box (:func:`refine`), up to ``max_zooms`` windows. A last window
   that still cuts the 99 % region is reported (:func:`assess`: the CLI's ``window_cut``, the panel's message).

The windows are sized for the surface the summaries use: a :class:`~lssviewer.model.likelihood.Tempering` of log L
(all of it, or only the network's term), or per-axis temperatures (T_om, T_s8): the surface stretched by sqrt(T)
per axis about the peak, the region tests at max(T) (conservative: a window never too small for either axis).

Summaries (:func:`lssviewer.model.likelihood.summarize_grid_2d`) use the last stage only: a rectilinear grid
that contains the posterior. Every stage's points are kept (e.g. for a plot of the coarse stage).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.errors import ParameterError
from lssviewer.model.likelihood import DEFAULT_NOISE, ScanPoint, Tempering

if TYPE_CHECKING:  # pragma: no cover
    from lssviewer.model.api import DiffusionModel

#: Half-width of a zoom window in standard deviations of the tempered likelihood per axis: the 99.7 % region
#: of a 2-D Gaussian (Delta log L = 5.9) reaches 3.4 sigma along each axis, so 4 leaves a margin for the error
#: of a fit made on a coarse grid.
N_SIGMA = 4.0
#: A window "cuts" the likelihood when a node on its edge (not on the prior's edge) is within this many
#: tempered nats of the maximum: chi2_ppf(0.99, 2) / 2, the 99 % contour.
EDGE_DEFICIT = 4.605
#: Padding of a first window around the 99 % region of the coarse grid's interpolant, as a fraction of its width.
PAD_FIRST = 0.25
#: Padding of a refined window around the 99 % region, as a fraction of the region's width (at least a step).
PAD = 0.15
#: A window is refined when the next one would be narrower than this fraction of it in an axis.
SHRINK = 0.5
#: :func:`refine`'s reason when a window's edge cuts the 99 % region.
CUT = "window cut the likelihood"
#: Zoom stages after the coarse one, at most.
MAX_ZOOMS = 2


@dataclasses.dataclass(frozen=True)
class GridStage:
    """One stage of a zoomed scan: the rectilinear grid about to be scanned.

    Attributes:
        stage: 0 for the coarse grid over the prior, 1, 2 for zoom windows.
        omega_m, sigma_8: the grid axes; the scan's ``ScanPoint.index`` is ``i * len(sigma_8) + j``.
        n_noise: noise draws per point in this stage.
        reason: why this stage is scanned ("prior", "zoom", "window cut the likelihood", "coarse resolution").
    """

    stage: int
    omega_m: np.ndarray
    sigma_8: np.ndarray
    n_noise: int
    reason: str

    @property
    def grid(self) -> np.ndarray:
        """(P1 * P2, 2) of (omega_m, sigma_8), omega_m index slow."""
        return np.array([(a, b) for a in self.omega_m for b in self.sigma_8], dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.omega_m), len(self.sigma_8)


def _check_finite(ll: np.ndarray) -> None:
    bad = int(np.size(ll) - np.count_nonzero(np.isfinite(ll)))
    if bad:
        raise ParameterError(f"the likelihood grid has {bad} non-finite value(s) of {np.size(ll)}: cannot place a "
                             "zoom window")


def _steps(om: np.ndarray, s8: np.ndarray) -> np.ndarray:
    """Grid steps (omega_m, sigma_8) of a uniform rectilinear grid."""
    return np.array([np.ptp(om) / (len(om) - 1), np.ptp(s8) / (len(s8) - 1)])


def _block(n: int, i: int, half: int = 1) -> slice:
    """Indices i-half..i+half of an axis of n nodes, shifted inward at the ends."""
    lo = min(max(i - half, 0), max(n - 2 * half - 1, 0))
    return slice(lo, min(lo + 2 * half + 1, n))


def quadratic_fit(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray,
                  max_deficit: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Peak and covariance of a quadratic fitted to a 2-D grid log L[i, j] near its best node.

    Least squares over the 3 x 3 block around the best node and, with ``max_deficit``, every node within that
    many nats of the maximum. Returns (centre (2,), covariance (2, 2) = -inverse Hessian) in parameter units, or
    None when the fit is not a maximum (the likelihood is flat or saddle-shaped there), the grid is smaller
    than 3 x 3 or holds non-finite values. The centre is kept inside the fitted nodes' range.
    """
    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    if len(om) < 3 or len(s8) < 3 or ll.shape != (len(om), len(s8)) or not np.all(np.isfinite(ll)):
        return None
    i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)
    use = np.zeros(ll.shape, dtype=bool)
    use[_block(len(om), i), _block(len(s8), j)] = True
    if max_deficit is not None:
        use |= ll >= ll.max() - max_deficit
    ii, jj = np.nonzero(use)
    # coordinates in grid steps around the best node (well conditioned)
    d1, d2 = _steps(om, s8)
    u, v = (om[ii] - om[i]) / d1, (s8[jj] - s8[j]) / d2
    design = np.column_stack([np.ones_like(u), u, v, 0.5 * u * u, u * v, 0.5 * v * v])
    coef, *_ = np.linalg.lstsq(design, ll[ii, jj] - ll.max(), rcond=None)
    hess = np.array([[coef[3], coef[4]], [coef[4], coef[5]]])
    if not np.all(np.linalg.eigvalsh(hess) < 0):
        return None
    cov_u = -np.linalg.inv(hess)
    peak_u = cov_u @ coef[1:3]
    peak_u = np.clip(peak_u, [u.min(), v.min()], [u.max(), v.max()])
    scale = np.array([d1, d2])
    return np.array([om[i], s8[j]]) + peak_u * scale, cov_u * np.outer(scale, scale)


def _tempered_sd(cov: np.ndarray, temperatures: tuple[float, float]) -> np.ndarray:
    """Standard deviations per axis of log L / T (T per axis: a coordinate stretch of sqrt(T) about the peak)."""
    return np.sqrt(np.diag(cov) * np.asarray(temperatures, dtype=np.float64))


def window(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray, bounds: np.ndarray,
           temperatures: tuple[float, float] = (1.0, 1.0), n_sigma: float = N_SIGMA) -> np.ndarray:
    """(2, 2) [[om_lo, om_hi], [s8_lo, s8_hi]]: a window around the peak of a grid, inside the prior ``bounds``.

    Where the grid's bicubic interpolant (:func:`lssviewer.model.likelihood.fine_grid_2d`) puts the 99 % region
    (tempered deficit < :data:`EDGE_DEFICIT`) at least a grid step wide in both axes, that region's bounding box
    padded by :data:`PAD_FIRST` of its width each way (on the built-in model a 7 x 7 grid's interpolant places
    the region within ~10 % of its width). A sharper peak: from :func:`quadratic_fit` (nodes within 12 tempered
    nats of the maximum), the fitted peak +- ``n_sigma`` tempered standard deviations; without a concave fit, the
    nodes less than :data:`EDGE_DEFICIT` below the maximum plus one grid step each way.
    """
    from lssviewer.model.likelihood import fine_grid_2d

    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    bounds = np.asarray(bounds, dtype=np.float64)
    steps = _steps(om, s8)
    _check_finite(ll)
    fo, fs, fine = fine_grid_2d(om, s8, ll)
    ii, jj = np.nonzero((fine.max() - fine) / max(temperatures) < EDGE_DEFICIT)
    lo = np.array([fo[ii].min(), fs[jj].min()])
    hi = np.array([fo[ii].max(), fs[jj].max()])
    resolved = bool(np.all(hi - lo >= steps))
    fit = None if resolved else quadratic_fit(om, s8, ll, max_deficit=12.0 * max(temperatures))
    if resolved:
        pad = PAD_FIRST * (hi - lo)
        lo, hi = lo - pad, hi + pad
    elif fit is not None:
        centre, cov = fit
        half = n_sigma * _tempered_sd(cov, temperatures)
        lo, hi = centre - half, centre + half
    else:
        tempered = ll.max() - EDGE_DEFICIT * max(temperatures)
        ii, jj = np.nonzero(ll >= tempered)
        lo = np.array([om[ii].min(), s8[jj].min()]) - steps
        hi = np.array([om[ii].max(), s8[jj].max()]) + steps
    # at least a thousandth of the prior wide, and clipped to the prior
    width = bounds[:, 1] - bounds[:, 0]
    need = np.maximum(hi - lo, 1e-3 * width)
    mid = np.clip(0.5 * (lo + hi), bounds[:, 0], bounds[:, 1])
    lo = np.maximum(mid - need / 2, bounds[:, 0])
    hi = np.minimum(mid + need / 2, bounds[:, 1])
    return np.column_stack([lo, hi])


def refine(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray, bounds: np.ndarray,
           temperatures: tuple[float, float] = (1.0, 1.0)) -> tuple[str, np.ndarray] | None:
    """(why, next window) when a zoom window's grid needs another zoom, or None when it holds and fills it.

    The region that matters is the nodes less than :data:`EDGE_DEFICIT` tempered nats below the maximum (the
    99 % contour); the next window is its bounding box padded by a grid step or :data:`PAD` of its width each
    way (whichever is more), and by a whole width on a side where the region reached the window's edge.
    "window cut the likelihood": the region reaches an edge of the window that is not the prior's edge.
    "coarse resolution": the next window is narrower than :data:`SHRINK` of this one in an axis (the region
    fills too few of the nodes). Model-free: no quadratic fit, so it also holds for non-Gaussian peaks.
    """
    om = np.asarray(omega_m, dtype=np.float64)
    s8 = np.asarray(sigma_8, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    bounds = np.asarray(bounds, dtype=np.float64)
    _check_finite(ll)
    inside = (ll.max() - ll) / max(temperatures) < EDGE_DEFICIT
    ii, jj = np.nonzero(inside)
    lo = np.array([om[ii].min(), s8[jj].min()])
    hi = np.array([om[ii].max(), s8[jj].max()])
    tol = 1e-9 * (bounds[:, 1] - bounds[:, 0])
    first = np.array([om[0], s8[0]])
    last = np.array([om[-1], s8[-1]])
    cut_lo = (lo <= first + tol) & (first > bounds[:, 0] + tol)
    cut_hi = (hi >= last - tol) & (last < bounds[:, 1] - tol)
    width = hi - lo
    pad = np.maximum(_steps(om, s8), PAD * width)
    new = np.column_stack([np.maximum(lo - pad - cut_lo * width, bounds[:, 0]),
                           np.minimum(hi + pad + cut_hi * width, bounds[:, 1])])
    if np.any(cut_lo | cut_hi):
        return CUT, new
    if np.any(new[:, 1] - new[:, 0] < SHRINK * (last - first)):
        return "coarse resolution", new
    return None


def assess(omega_m: Sequence[float], sigma_8: Sequence[float], log_likelihood: np.ndarray, bounds: np.ndarray,
           temperatures: tuple[float, float] = (1.0, 1.0)) -> str | None:
    """Why a zoom window's grid needs another zoom (:func:`refine`), or None."""
    res = refine(omega_m, sigma_8, log_likelihood, bounds, temperatures)
    return None if res is None else res[0]


def zoomed_grid_2d(model: DiffusionModel, catalog: HaloCatalog, points: int = 11, coarse: int = 7,
                   n_noise: int = DEFAULT_NOISE, coarse_noise: int = 4, seed: int = 0,
                   temperatures: tuple[float, float] | None = None, max_zooms: int = MAX_ZOOMS,
                   cancel: Callable[[], bool] | None = None, tempering: Tempering | None = None,
                   **kwargs: Any) -> Iterator[GridStage | ScanPoint]:
    """Scan a catalog's likelihood on a coarse grid over the prior, then on zoom windows around the peak.

    Yields a :class:`GridStage` before each stage's points, then that stage's :class:`ScanPoint` s as they
    finish (indices into the stage's grid). The windows are sized for the tempered surface the summaries will
    use: ``tempering`` (a :class:`~lssviewer.model.likelihood.Tempering`, e.g. one that tempers the network's term
    only), or ``temperatures``, per-axis temperatures of all of log L (not both); default: the model's 2-D grid
    tempering (``grid_tempering()``). ``kwargs`` go to ``model.scan``. Every stage uses the same ``seed`` (common
    random numbers within a stage).
    """
    if points < 3 or coarse < 3:
        raise ParameterError(f"a zoomed grid needs >= 3 points per axis (got points={points}, coarse={coarse})")
    if max_zooms < 1:
        raise ParameterError(f"max_zooms must be >= 1, got {max_zooms}")
    if tempering is not None and temperatures is not None:
        raise ParameterError("give a zoomed grid either a tempering or per-axis temperatures, not both")
    if tempering is None and temperatures is None:
        tempering = default_grid_tempering(model)
    if tempering is not None:  # the windows are sized on log L_T itself
        temperatures = (1.0, 1.0)
    bounds = np.asarray(model.prior.bounds(), dtype=np.float64)
    stage = GridStage(0, np.linspace(*bounds[0], coarse), np.linspace(*bounds[1], coarse), coarse_noise, "prior")
    reason = "zoom"
    for k in range(max_zooms + 1):
        yield stage
        ll = np.full(stage.shape, np.nan)
        box = np.full(stage.shape, np.nan)
        for pt in model.scan(catalog, stage.grid, n_noise=stage.n_noise, seed=seed, cancel=cancel, **kwargs):
            ij = divmod(pt.index, stage.shape[1])
            ll[ij] = pt.log_likelihood
            if pt.box_log_likelihood is not None:
                box[ij] = pt.box_log_likelihood
            yield pt
        if k == max_zooms:
            return
        if tempering is not None:
            # points without the box statistics' term (not a box-standardised model): Tempering says so
            ll = tempering.apply(ll, None if not tempering.network_only or np.isnan(box).any() else box)
        if k == 0:
            win = window(stage.omega_m, stage.sigma_8, ll, bounds, temperatures)
        else:
            res = refine(stage.omega_m, stage.sigma_8, ll, bounds, temperatures)
            if res is None:
                return
            reason, win = res
        stage = GridStage(k + 1, np.linspace(*win[0], points), np.linspace(*win[1], points), n_noise, reason)


def default_grid_tempering(model: Any) -> Tempering:
    """The tempering of a model's 2-D grids: its ``grid_tempering()``, else its ``grid_temperature_or_pooled()`` /
    ``temperature`` (all of log L), else none."""
    own = getattr(model, "grid_tempering", None)
    if own is not None:
        return own()
    t = getattr(model, "grid_temperature_or_pooled", None)
    return Tempering(temperature=float(t()) if t is not None else float(getattr(model, "temperature", 1.0)))


def collect(events: Iterator[GridStage | ScanPoint],
            on_point: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run a :func:`zoomed_grid_2d` scan to the end: per stage, its axes, noise draws, reason and
    ``log_likelihood`` / ``stderr`` / ``box_log_likelihood`` arrays (omega_m index first; the last NaN where the
    model has no box statistics' term), ``draws`` ((P1, P2, S) :attr:`ScanPoint.draws`, or None when the points
    have none) and ``done`` (points finished). ``on_point`` gets the current stage's dict after each point (e.g. to
    show progress)."""
    stages: list[dict[str, Any]] = []
    for ev in events:
        if isinstance(ev, GridStage):
            stages.append({"stage": ev.stage, "omega_m": ev.omega_m, "sigma_8": ev.sigma_8, "n_noise": ev.n_noise,
                           "reason": ev.reason, "log_likelihood": np.full(ev.shape, np.nan),
                           "stderr": np.full(ev.shape, np.nan), "box_log_likelihood": np.full(ev.shape, np.nan),
                           "draws": None, "done": 0})
        else:
            st = stages[-1]
            ij = divmod(ev.index, len(st["sigma_8"]))
            st["log_likelihood"][ij], st["stderr"][ij] = ev.log_likelihood, ev.stderr
            if ev.box_log_likelihood is not None:
                st["box_log_likelihood"][ij] = ev.box_log_likelihood
            if ev.draws is not None:
                if st["draws"] is None:
                    st["draws"] = np.full((*st["log_likelihood"].shape, len(ev.draws)), np.nan)
                st["draws"][ij] = ev.draws
            st["done"] += 1
            if on_point is not None:
                on_point(st)
    return stages
