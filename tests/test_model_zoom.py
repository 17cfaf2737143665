"""Zoomed 2-D likelihood grids (lssviewer.model.zoom) and the interpolated 2-D summaries, on exact Gaussian
likelihoods whose peak, covariance and contour coverage are known analytically."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.errors import ParameterError
from lssviewer.model.likelihood import ScanPoint, summarize_grid_2d, truth_deficit_2d
from lssviewer.model.sampler import Cancelled
from lssviewer.model.zoom import (
    CUT,
    EDGE_DEFICIT,
    GridStage,
    assess,
    collect,
    quadratic_fit,
    refine,
    window,
    zoomed_grid_2d,
)

BOUNDS = np.array([[0.1, 0.5], [0.6, 1.0]])


def _cov(sd: tuple[float, float], rho: float) -> np.ndarray:
    return np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])


def _gauss(om: np.ndarray, s8: np.ndarray, peak: np.ndarray, cov: np.ndarray) -> np.ndarray:
    a, b = np.meshgrid(om, s8, indexing="ij")
    d = np.stack([a - peak[0], b - peak[1]], axis=-1)
    return -0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)


class GaussianModel:
    """A model whose log L is an exact 2-D Gaussian (peak, cov) per catalog; counts evaluated points."""

    prior = DEFAULT_PRIOR

    def __init__(self, cov: np.ndarray, peaks: dict[int, np.ndarray], temperature: float = 1.0):
        self.cov, self.peaks, self.temperature, self.evaluated = cov, peaks, temperature, 0

    def scan(self, catalog, grid, n_noise=16, seed=0, cancel=None):
        peak = self.peaks[id(catalog)]
        prec = np.linalg.inv(self.cov)
        for k, th in enumerate(np.asarray(grid)):
            d = th - peak
            self.evaluated += 1
            yield ScanPoint(k, (float(th[0]), float(th[1])), float(-0.5 * d @ prec @ d), 0.0)


def _catalog(om: float = 0.3, s8: float = 0.8) -> HaloCatalog:
    return HaloCatalog(np.zeros((3, 3)), np.zeros((3, 3)), np.full(3, 1e13), box_size=100.0,
                       cosmology=Cosmology(om, s8))


def test_quadratic_fit_recovers_peak_and_covariance():
    om, s8 = np.linspace(0.2, 0.4, 9), np.linspace(0.7, 0.9, 9)
    peak, cov = np.array([0.3137, 0.8041]), _cov((0.02, 0.015), -0.7)
    centre, fitted = quadratic_fit(om, s8, _gauss(om, s8, peak, cov), max_deficit=12)
    np.testing.assert_allclose(centre, peak, atol=1e-10)
    np.testing.assert_allclose(fitted, cov, rtol=1e-8)
    assert quadratic_fit(om, s8, np.zeros((9, 9))) is None  # flat: no maximum
    assert quadratic_fit(om[:2], s8, np.zeros((2, 9))) is None


def test_window_from_the_interpolant_or_a_quadratic_fit_inside_the_prior():
    om, s8 = np.linspace(0.1, 0.5, 7), np.linspace(0.6, 1.0, 7)
    peak = np.array([0.31, 0.79])
    # a peak wider than a coarse step: the 99 % region of the interpolant (Delta < 4.605: +-3.035 sd for a
    # Gaussian, which the bicubic spline reproduces) padded by a quarter of its width each way: +-4.55 sd, to
    # the fine grid's step (0.002)
    cov = _cov((0.03, 0.02), 0.0)
    half = 1.5 * np.sqrt(2 * EDGE_DEFICIT) * np.array([0.03, 0.02])
    np.testing.assert_allclose(window(om, s8, _gauss(om, s8, peak, cov), BOUNDS),
                               np.column_stack([peak - half, peak + half]), atol=0.0025)
    # a peak narrower than a step (region 0.03 wide, step 0.067): the quadratic fit's +-4 sd (correlated)
    sharp = _cov((0.005, 0.004), 0.3)
    np.testing.assert_allclose(window(om, s8, _gauss(om, s8, peak, sharp), BOUNDS, n_sigma=4),
                               [[0.31 - 0.02, 0.31 + 0.02], [0.79 - 0.016, 0.79 + 0.016]], atol=1e-9)
    # a temperature stretches each axis by sqrt(T) (and the window is clipped to the prior)
    win4 = window(om, s8, _gauss(om, s8, peak, sharp), BOUNDS, temperatures=(4.0, 1.0), n_sigma=4)
    np.testing.assert_allclose(win4, [[0.31 - 0.04, 0.31 + 0.04], [0.79 - 0.016, 0.79 + 0.016]], atol=1e-9)
    # near the prior's edge the window stays inside the prior
    edge = window(om, s8, _gauss(om, s8, np.array([0.12, 0.98]), cov), BOUNDS)
    assert edge[0, 0] == pytest.approx(0.1) and edge[1, 1] == pytest.approx(1.0)
    # no concave fit and a region narrower than a step in Omega_m, flat in sigma_8: the nodes within
    # EDGE_DEFICIT of the maximum, one step each way, clipped
    ll = -100.0 * (np.arange(7)[:, None] - 3.0) ** 2 + np.zeros((1, 7))
    assert quadratic_fit(om, s8, ll) is None
    np.testing.assert_allclose(window(om, s8, ll, BOUNDS), [[0.3 - 0.4 / 6, 0.3 + 0.4 / 6], [0.6, 1.0]])


def test_assess_detects_a_cut_window_and_a_coarse_one():
    cov = _cov((0.006, 0.005), -0.6)
    peak = np.array([0.31, 0.81])
    good = np.linspace(0.31 - 0.024, 0.31 + 0.024, 9), np.linspace(0.81 - 0.02, 0.81 + 0.02, 9)
    assert assess(*good, _gauss(*good, peak, cov), BOUNDS) is None
    cut = np.linspace(0.30, 0.312, 9), good[1]  # the peak is 0.002 (< 1 sd) from the window's edge
    assert assess(*cut, _gauss(*cut, peak, cov), BOUNDS) == "window cut the likelihood"
    # a peak on the prior's edge: the window's edge there is the prior's, not a cut
    at_edge = np.array([0.1, 0.81])
    prior_side = np.linspace(0.1, 0.124, 9), good[1]
    assert assess(*prior_side, _gauss(*prior_side, at_edge, cov), BOUNDS) is None
    wide = np.linspace(0.25, 0.37, 9), np.linspace(0.75, 0.87, 9)  # step 0.015: 3 conditional sd
    assert assess(*wide, _gauss(*wide, peak, cov), BOUNDS) == "coarse resolution"


def test_zoomed_grid_resolves_a_narrow_correlated_likelihood():
    """A likelihood a few hundredths wide, correlated like the built-in model's (rho -0.7): the zoomed grid holds
    it in one window and its summary recovers the peak and the profile intervals (+-1 marginal sd)."""
    cov = _cov((0.008, 0.006), -0.7)
    cat = _catalog()
    peak = np.array([0.3213, 0.8127])
    model = GaussianModel(cov, {id(cat): peak})
    stages = collect(zoomed_grid_2d(model, cat, points=11))
    assert [s["stage"] for s in stages][:2] == [0, 1] and stages[0]["n_noise"] == 4 and stages[1]["n_noise"] == 16
    assert model.evaluated == sum(s["log_likelihood"].size for s in stages)
    last = stages[-1]
    assert assess(last["omega_m"], last["sigma_8"], last["log_likelihood"], BOUNDS) is None
    summ = summarize_grid_2d(last["omega_m"], last["sigma_8"], last["log_likelihood"])
    # the summary's fine grid has 201 nodes over +-4 sd: the MAP within half a fine step (0.02 sd), the interval ends
    # (a bicubic spline reproduces the quadratic; summarize_profile's crossing) within 0.01 sd (measured 4e-4)
    np.testing.assert_allclose(summ["map"], peak, atol=0.02 * 0.006)
    for p, i in (("omega_m", 0), ("sigma_8", 1)):
        sd = np.sqrt(cov[i, i])  # the profile of a Gaussian over the other parameter has the marginal width
        np.testing.assert_allclose(summ[p]["interval68"], [peak[i] - sd, peak[i] + sd], atol=0.01 * sd)


class HyperbolicModel(GaussianModel):
    """log L = -(sqrt(1 + q) - 1), q the Mahalanobis distance squared: Gaussian at the peak, linear in the
    tails (like an ELBO far from its maximum), so a spline through nodes several widths apart misjudges it."""

    def scan(self, catalog, grid, n_noise=16, seed=0, cancel=None):
        for pt in super().scan(catalog, grid, n_noise, seed, cancel):
            q = -2.0 * pt.log_likelihood
            yield ScanPoint(pt.index, pt.theta, float(1.0 - np.sqrt(1.0 + q)), 0.0)


def test_zoomed_grid_places_a_non_gaussian_peak_that_a_grid_over_the_prior_misses():
    cat = _catalog()
    peak, sd = np.array([0.3213, 0.8127]), (0.008, 0.006)
    model = HyperbolicModel(_cov(sd, 0.0), {id(cat): peak})
    # profile over the other parameter (at its peak value): sqrt(1 + u^2) - 1 = 0.5 -> u = sqrt(1.25)
    half = np.sqrt(1.25) * np.array(sd)
    stages = collect(zoomed_grid_2d(model, cat, points=15))  # the CLI's default
    assert [s["reason"] for s in stages] == ["prior", "zoom"]  # the coarse interpolant's region holds it
    last = stages[-1]
    summ = summarize_grid_2d(last["omega_m"], last["sigma_8"], last["log_likelihood"])
    om, s8 = np.linspace(0.1, 0.5, 11), np.linspace(0.6, 1.0, 11)
    flat = [pt.log_likelihood for pt in model.scan(cat, GridStage(0, om, s8, 16, "prior").grid)]
    prior_grid = summarize_grid_2d(om, s8, np.reshape(flat, (11, 11)))
    # the window spans the 99 % region (+-5.5 sd: linear tails) padded, so its nodes are ~1 sd apart where the
    # curvature changes on the scale of 1 sd: the cubic interpolant puts the ends within 0.2 sd (deterministic;
    # measured 0.07-0.13); over the prior (nodes 5-7 sd apart) the interval is nearly twice too wide
    for i, p in enumerate(("omega_m", "sigma_8")):
        np.testing.assert_allclose(summ[p]["interval68"], [peak[i] - half[i], peak[i] + half[i]], atol=0.2 * sd[i])
        width = np.diff(prior_grid[p]["interval68"])[0]
        assert width > 1.5 * 2 * half[i], (p, width, 2 * half[i])


def test_zoom_stages_follow_a_broad_or_edge_likelihood_and_stop():
    cat = _catalog()
    broad = GaussianModel(_cov((0.3, 0.3), 0.0), {id(cat): np.array([0.3, 0.8])})
    stages = collect(zoomed_grid_2d(broad, cat, points=5))
    np.testing.assert_allclose([stages[1]["omega_m"][[0, -1]], stages[1]["sigma_8"][[0, -1]]], BOUNDS)
    assert len(stages) == 2  # the whole prior, already resolved
    edge = GaussianModel(_cov((0.004, 0.004), 0.0), {id(cat): np.array([0.1, 0.995])})
    stages = collect(zoomed_grid_2d(edge, cat, points=9, max_zooms=1))
    assert len(stages) == 2 and stages[1]["omega_m"][0] == pytest.approx(0.1)
    assert stages[1]["sigma_8"][-1] == pytest.approx(1.0)
    with pytest.raises(ParameterError):
        list(zoomed_grid_2d(edge, cat, points=2))


def test_two_d_contours_of_a_calibrated_likelihood_cover_68_and_95_percent():
    """300 boxes, each log L an exact Gaussian whose peak scatters around the truth with the likelihood's own
    covariance: the truth's 2-D deficit is chi2_2 / 2, so the 68.27 % / 95 % contours (1.15 / 3.00) of the zoomed
    grids cover 68 % / 95 % (binomial sd 2.7 % / 1.3 %: 3.5 sd bounds; a truth outside the last window counts as
    a miss); each box's interpolated deficit matches the analytic Mahalanobis distance."""
    rng = np.random.default_rng(5)
    cov = _cov((0.01, 0.008), -0.5)
    cats = [_catalog(rng.uniform(0.2, 0.4), rng.uniform(0.7, 0.9)) for _ in range(300)]
    peaks = {id(c): np.array([c.omega_m, c.sigma_8]) + rng.multivariate_normal([0, 0], cov) for c in cats}
    model = GaussianModel(cov, peaks)
    deficits, exact = [], []
    for c in cats:
        last = collect(zoomed_grid_2d(model, c, points=9))[-1]
        deficits.append(truth_deficit_2d(last["omega_m"], last["sigma_8"], last["log_likelihood"],
                                         (c.omega_m, c.sigma_8)))
        d = np.array([c.omega_m, c.sigma_8]) - peaks[id(c)]
        exact.append(0.5 * d @ np.linalg.inv(cov) @ d)
    deficits, exact = np.array(deficits), np.array(exact)
    finite = np.isfinite(deficits)
    # a bicubic spline reproduces a quadratic: only the 201-point fine grid's maximum is off (< 1e-3 nats here)
    np.testing.assert_allclose(deficits[finite], exact[finite], atol=2e-3)
    assert np.all(exact[~finite] > EDGE_DEFICIT)  # a truth outside the window is outside the 99 % contour
    assert abs(np.mean(deficits <= chi2.ppf(0.6827, 2) / 2) - 0.6827) < 0.095
    assert abs(np.mean(deficits <= chi2.ppf(0.95, 2) / 2) - 0.95) < 0.045
    with pytest.raises(ParameterError):
        truth_deficit_2d([0.2, 0.3], [0.7, 0.8], np.array([[0.0, np.nan], [1.0, 2.0]]), (0.25, 0.75))


def test_zoom_reports_bad_grids_cancels_and_sizes_per_axis_temperatures():
    cat = _catalog()
    om, s8 = np.linspace(0.1, 0.5, 7), np.linspace(0.6, 1.0, 7)
    nan = np.zeros((7, 7))
    nan[2, 3] = np.nan
    with pytest.raises(ParameterError, match="1 non-finite"):
        window(om, s8, nan, BOUNDS)
    with pytest.raises(ParameterError, match="non-finite"):
        refine(om, s8, nan, BOUNDS)
    # per-axis temperatures: the window along an axis grows by sqrt(T) of that axis (a peak narrower than a
    # coarse step even at T = 4: the quadratic fit's window)
    ll = _gauss(om, s8, np.array([0.3, 0.8]), _cov((0.004, 0.004), 0.0))
    w1, w4 = window(om, s8, ll, BOUNDS), window(om, s8, ll, BOUNDS, temperatures=(4.0, 1.0))
    np.testing.assert_allclose(np.diff(w4, axis=1).ravel() / np.diff(w1, axis=1).ravel(), [2.0, 1.0])
    # a window of +-5 raw sd holds the 99 % region at T = 1 but not once Omega_m is stretched by sqrt(4)
    cov = _cov((0.01, 0.01), 0.0)
    win = np.linspace(0.25, 0.35, 11), np.linspace(0.75, 0.85, 11)
    g = _gauss(*win, np.array([0.3, 0.8]), cov)
    assert refine(*win, g, BOUNDS) is None
    assert refine(*win, g, BOUNDS, temperatures=(4.0, 1.0))[0] == CUT

    # cancel() is passed to every stage's scan
    class Cancelling(GaussianModel):
        def scan(self, catalog, grid, n_noise=16, seed=0, cancel=None):
            for k, pt in enumerate(super().scan(catalog, grid, n_noise, seed)):
                if cancel is not None and cancel() and k > 3:
                    raise Cancelled("scan cancelled")
                yield pt

    calls = []
    model = Cancelling(cov, {id(cat): np.array([0.3, 0.8])})
    with pytest.raises(Cancelled):
        collect(zoomed_grid_2d(model, cat, cancel=lambda: calls.append(1) or len(calls) > 60))
    assert model.evaluated < 49 + 121


class QuarticModel(GaussianModel):
    """log L = -(q / 2)^2: steeper than a Gaussian away from the peak. With sd 0.01 the 99 % region ((q / 2)^2 <
    4.6: out to 2.07 sd) is narrower than a coarse step (6.7 sd), so the first window comes from a quadratic fitted
    to nodes 6.7 sd apart, ~5x too narrow: +-4 fitted sd = +-0.85 sd cuts the region."""

    def scan(self, catalog, grid, n_noise=16, seed=0, cancel=None):
        for pt in super().scan(catalog, grid, n_noise, seed, cancel):
            yield ScanPoint(pt.index, pt.theta, -float(pt.log_likelihood) ** 2, 0.0)


def test_a_window_that_cuts_is_widened_and_a_last_one_that_still_cuts_is_reported():
    cat = _catalog()
    model = QuarticModel(_cov((0.01, 0.01), 0.0), {id(cat): np.array([0.31, 0.79])})
    once = collect(zoomed_grid_2d(model, cat, points=11, max_zooms=1))
    last = once[-1]
    assert assess(last["omega_m"], last["sigma_8"], last["log_likelihood"], BOUNDS) == CUT
    # each cut window is widened on its cut sides: the third window holds the region (measured: Omega_m
    # -0.2..0.9, -1.5..2.1, -5.1..2.2 sd around the peak; the region reaches +-2.07 sd)
    more = collect(zoomed_grid_2d(model, cat, points=11, max_zooms=3))
    assert [s["reason"] for s in more] == ["prior", "zoom", CUT, CUT]
    widths = [np.ptp(s["omega_m"]) for s in more[1:]]
    assert widths[0] < widths[1] < widths[2]
    last = more[-1]
    assert assess(last["omega_m"], last["sigma_8"], last["log_likelihood"], BOUNDS) is None


def test_grid_stage_grid_order():
    st = GridStage(1, np.array([0.2, 0.3]), np.array([0.7, 0.8, 0.9]), 16, "zoom")
    assert st.shape == (2, 3)
    np.testing.assert_allclose(st.grid[4], [0.3, 0.8])  # index i * len(sigma_8) + j
