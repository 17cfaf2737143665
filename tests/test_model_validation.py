"""Model-card validation helpers: statistics against closed forms, and calibration of the intervals."""

from __future__ import annotations

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.model.likelihood import ScanPoint
from lssviewer.model.validation import coverage, sample_vs_simulation


def _cat(pos, vel, box=100.0, om=0.3, s8=0.8):
    n = len(pos)
    return HaloCatalog(pos, vel, np.full(n, 1e13), box_size=box, cosmology=Cosmology(om, s8), wrap=True)


def _poisson_cats(rng, n_cats, om=0.3, s8=0.8, mass_shift=0.0, n=300):
    return [HaloCatalog(rng.uniform(0, 100, (n, 3)), rng.normal(0, 300, (n, 3)),
                        10 ** (13 + rng.exponential(0.3, n) + mass_shift), box_size=100.0, redshift=0.5,
                        cosmology=Cosmology(om, s8)) for _ in range(n_cats)]


class PoissonSampler:
    """Stands in for a DiffusionModel whose samples come from the simulations' own distribution."""

    n_halos = 300

    def __init__(self, mass_shift=0.0):
        self.mass_shift = mass_shift

    def sample(self, om, s8, n=1, seed=0, allow_extrapolation=False):
        return _poisson_cats(np.random.default_rng(1000 + seed), n, om, s8, self.mass_shift)


def test_residuals_accept_the_right_model_and_reject_a_biased_one():
    rng = np.random.default_rng(0)
    fresh = _poisson_cats(rng, 12, 0.3, 0.8) + _poisson_cats(rng, 12, 0.2, 0.9)
    good = sample_vs_simulation(PoissonSampler(), fresh, n_samples=12)
    assert good["n_cosmologies"] == 2 and set(good["summary"]) == {"hmf", "xi", "vpdf", "pairwise"}
    for name, summ in good["summary"].items():
        # same distribution: residuals are ~ t-distributed with 22 dof; >= 85 % within 2 sigma
        # (expected ~94 %; bins are correlated, so the fraction fluctuates more than binomially)
        assert summ["within_2sigma"] >= 0.85, (name, summ)
        assert summ["within_3sigma"] >= 0.95, (name, summ)
    biased = sample_vs_simulation(PoissonSampler(mass_shift=0.15), fresh, n_samples=12)
    # masses 0.15 dex too high: the cumulative mass function is off by many sigma
    assert biased["summary"]["hmf"]["max_abs_sigma"] > 5


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
