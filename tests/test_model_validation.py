"""Model-card validation helpers: statistics against closed forms, and calibration of the intervals."""

from __future__ import annotations

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.model.likelihood import ScanPoint
from lssviewer.model.validation import correlation_function, coverage, mass_function, pairwise_velocity, residuals


def _cat(pos, vel, box=100.0, om=0.3, s8=0.8):
    n = len(pos)
    return HaloCatalog(pos, vel, np.full(n, 1e13), box_size=box, cosmology=Cosmology(om, s8), wrap=True)


def test_xi_of_poisson_points_vanishes_and_v12_of_a_linear_infall():
    rng = np.random.default_rng(0)
    cat = _cat(rng.uniform(0, 100, (4000, 3)), np.zeros((4000, 3)))
    edges = np.linspace(5, 20, 4)
    xi = correlation_function(cat, edges)
    # Poisson error of DD in a shell is 1/sqrt(DD/2) (unordered pairs): > 3700 pairs per shell -> 2.4 %
    assert np.all(np.abs(xi) < 0.1), xi
    # a contracting blob v = -k (x - c): every pair has (v_j - v_i) . r_hat = -k r exactly
    pos = 50 + rng.normal(0, 5, (300, 3))
    cat = _cat(pos, -2.0 * (pos - 50))
    e = np.array([1.0, 3.0, 6.0])
    mid = pairwise_velocity(cat, e)
    d = pos[:, None] - pos[None]
    r = np.linalg.norm(d, axis=-1)[np.triu_indices(300, 1)]
    expect = [np.mean(-2.0 * r[(r >= a) & (r < b)]) for a, b in zip(e[:-1], e[1:], strict=True)]
    assert np.allclose(mid, expect, rtol=1e-9)
    m = HaloCatalog(pos, pos * 0, 10 ** np.linspace(12, 14, 300), box_size=100.0)
    assert np.allclose(mass_function(m, np.array([11.0, 13.0])) * 1e6, [300, 150], atol=1)
    assert np.allclose(residuals(np.array([[1.0], [3.0]]), np.array([[0.0], [2.0]])), [1.0 / np.sqrt(2 / 2 + 2 / 2)])


class GaussianLikelihoodModel:
    """Stands in for a DiffusionModel whose likelihood is exactly Gaussian around an unbiased estimate."""

    prior = DEFAULT_PRIOR
    n_halos = 5

    def __init__(self, sigma, rng):
        self.sigma, self.rng = sigma, rng

    def scan(self, catalog, grid, n_noise=8, seed=0, cancel=None):
        truth = np.array([catalog.omega_m, catalog.sigma_8])
        est = truth + self.sigma * self.rng.normal(size=2)
        for k, th in enumerate(np.asarray(grid)):
            ll = -0.5 * np.sum(((th - est) / self.sigma) ** 2)
            yield ScanPoint(k, tuple(th), float(ll), 0.0)


def test_coverage_of_a_calibrated_likelihood_is_68_percent():
    rng = np.random.default_rng(1)
    cats = [_cat(rng.uniform(0, 100, (5, 3)), np.zeros((5, 3)), om=rng.uniform(0.2, 0.4), s8=rng.uniform(0.7, 0.9))
            for _ in range(300)]
    res = coverage(GaussianLikelihoodModel(np.array([0.03, 0.02]), rng), cats, points=41)
    for p, width in (("omega_m", 0.06), ("sigma_8", 0.04)):
        # binomial sd of a 68 % fraction over 300 boxes is 2.7 %: 3.5 sd bounds
        assert abs(res[p]["coverage68"] - 0.6827) < 0.095, res
        assert abs(res[p]["coverage95"] - 0.95) < 0.045, res
        assert abs(res[p]["median_width68"] - width) < 0.1 * width
