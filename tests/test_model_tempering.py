"""Tempering the network's term of log L apart from the box statistics' Gaussian (lssviewer.model.likelihood.Tempering)
on likelihoods made of two exact Gaussian terms, whose tempered peak and covariance are known analytically:
log L_T = box + network / T has precision P_box + P_net / T and mean P^-1 (P_box mu_box + P_net mu_net / T)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology
from lssviewer.errors import ParameterError
from lssviewer.model.likelihood import (
    ScanPoint,
    Tempering,
    as_tempering,
    summarize_grid_2d,
    summarize_profile,
    tempered_grid_2d,
    truth_deficit_2d,
)
from lssviewer.model.zoom import CUT, assess, collect, default_grid_tempering, zoomed_grid_2d

BOUNDS = np.array([[0.1, 0.5], [0.6, 1.0]])


def _quad(theta: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = np.asarray(theta) - mu
    return -0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)


def _tempered_gaussian(mu_b, cov_b, mu_n, cov_n, t_net):
    pb, pn = np.linalg.inv(cov_b), np.linalg.inv(cov_n) / t_net
    cov = np.linalg.inv(pb + pn)
    return cov @ (pb @ mu_b + pn @ mu_n), cov


class TwoTermModel:
    """log L = box Gaussian + network Gaussian, exact; ScanPoints carry the box term."""

    prior = DEFAULT_PRIOR

    def __init__(self, mu_b, cov_b, mu_n, cov_n, network_temperature=None):
        self.mu_b, self.cov_b, self.mu_n, self.cov_n = (np.asarray(a, dtype=float) for a in (mu_b, cov_b, mu_n, cov_n))
        self.network_temperature = network_temperature

    def grid_tempering(self) -> Tempering:
        return Tempering(network=self.network_temperature or 1.0)

    def scan(self, catalog, grid, n_noise=16, seed=0, cancel=None):
        for k, th in enumerate(np.asarray(grid, dtype=float)):
            box = float(_quad(th, self.mu_b, self.cov_b))
            yield ScanPoint(k, (float(th[0]), float(th[1])), box + float(_quad(th, self.mu_n, self.cov_n)), 0.0,
                            box_log_likelihood=box)


def _catalog() -> HaloCatalog:
    return HaloCatalog(np.zeros((3, 3)), np.zeros((3, 3)), np.full(3, 1e13), box_size=100.0,
                       cosmology=Cosmology(0.3, 0.8))


def test_tempering_applies_to_the_network_term_only_and_checks_its_input():
    ll, box = np.array([-3.0, -1.0, -2.0]), np.array([-1.0, -0.5, -1.5])
    np.testing.assert_allclose(Tempering(network=4.0).apply(ll, box), box + (ll - box) / 4.0)
    np.testing.assert_allclose(Tempering(temperature=2.0).apply(ll), ll / 2.0)  # no box term needed
    np.testing.assert_allclose(Tempering(2.0, 4.0).apply(ll, box), (box + (ll - box) / 4.0) / 2.0)
    assert as_tempering(3.0) == Tempering(temperature=3.0) and as_tempering(Tempering(network=2.0)).network == 2.0
    assert Tempering(network=6.2).describe() == "box + network / 6.2"
    with pytest.raises(ParameterError, match="box statistics"):
        Tempering(network=4.0).apply(ll)
    with pytest.raises(ParameterError, match="shape"):
        Tempering(network=4.0).apply(ll, box[:2])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ParameterError):
            Tempering(network=bad)


def test_profile_of_two_gaussian_terms_matches_the_tempered_gaussian():
    """1-D: box N(0.30, 0.03), network N(0.32, 0.01); tempered by T_net 6: precision 1/0.03^2 + 1/(6 0.01^2),
    the MAP at the precision-weighted mean, the 68 / 95 % intervals +-1 / +-1.96 sd (a quadratic profile: the
    cubic spline is exact, so the tolerance is the 4,001-point fine grid's step, 1e-4)."""
    x = np.linspace(0.1, 0.5, 30)
    box = -0.5 * ((x - 0.30) / 0.03) ** 2
    ll = box - 0.5 * ((x - 0.32) / 0.01) ** 2
    prec_b, prec_n = 1 / 0.03**2, 1 / (6 * 0.01**2)
    mean, sd = (prec_b * 0.30 + prec_n * 0.32) / (prec_b + prec_n), (prec_b + prec_n) ** -0.5
    s = summarize_profile(x, ll, temperature=Tempering(network=6.0), box_log_likelihood=box)
    assert s["map"] == pytest.approx(mean, abs=1e-4)
    np.testing.assert_allclose(s["interval68"], [mean - sd, mean + sd], atol=2e-4)
    np.testing.assert_allclose(s["interval95"], [mean - 1.96 * sd, mean + 1.96 * sd], atol=3e-4)
    assert s["network_temperature"] == 6.0 and s["temperature"] == 1.0
    raw = summarize_profile(x, ll)  # untempered: the sharper combination, nearer the network's peak
    assert raw["interval68"][1] - raw["interval68"][0] < 0.6 * (s["interval68"][1] - s["interval68"][0])


def test_zoomed_grid_of_two_gaussian_terms_is_sized_and_summarised_on_the_tempered_surface():
    """2-D: a broad box term and a sharp network term along a degeneracy. With T_net 8 the tempered posterior is
    2.8x wider than the raw one across it (2.1x along it): a zoom sized for the raw surface cuts the tempered 99 %
    region, one sized for the tempering holds it, and its summary gives the analytic MAP, 68 % profile intervals
    (mean +- the tempered marginal sd) and 68 / 95 % contours (the truth at a known deficit)."""
    mu_b, cov_b = np.array([0.30, 0.80]), np.diag([0.04, 0.04]) ** 2
    mu_n = np.array([0.31, 0.79])
    cov_n = np.array([[0.012**2, -0.9 * 0.012 * 0.008], [-0.9 * 0.012 * 0.008, 0.008**2]])
    model = TwoTermModel(mu_b, cov_b, mu_n, cov_n, network_temperature=8.0)
    cat = _catalog()
    stages = collect(zoomed_grid_2d(model, cat, points=15, coarse=9))  # default: the model's grid tempering
    last = stages[-1]
    om, s8, ll, box = last["omega_m"], last["sigma_8"], last["log_likelihood"], last["box_log_likelihood"]
    tempering = default_grid_tempering(model)
    assert tempering == Tempering(network=8.0)
    tempered = tempered_grid_2d(om, s8, ll, tempering, box)
    assert assess(om, s8, tempered, BOUNDS) is None  # the window holds the tempered 99 % region
    mean, cov = _tempered_gaussian(mu_b, cov_b, mu_n, cov_n, 8.0)
    s = summarize_grid_2d(om, s8, ll, temperature=tempering, box_log_likelihood=box)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(s["map"], mean, atol=0.05 * sd.min())
    for i, p in enumerate(("omega_m", "sigma_8")):
        np.testing.assert_allclose(s[p]["interval68"], [mean[i] - sd[i], mean[i] + sd[i]], atol=0.05 * sd[i])
        assert s[p]["network_temperature"] == 8.0
    # a point at a chosen Mahalanobis distance of the tempered Gaussian has the analytic deficit d^2 / 2
    direction = np.linalg.cholesky(cov) @ np.array([1.0, 0.0])
    for r in (1.0, 2.0):
        at = mean + r * direction
        assert truth_deficit_2d(om, s8, tempered, at) == pytest.approx(r**2 / 2, abs=0.02)
    assert s["levels"]["68"] == pytest.approx(tempered.max() - chi2.ppf(0.6827, 2) / 2, abs=0.02)
    # windows sized for the untempered surface are too small for the tempered one
    raw_stages = collect(zoomed_grid_2d(model, cat, points=15, coarse=9, tempering=Tempering()))
    r = raw_stages[-1]
    assert (r["omega_m"][-1] - r["omega_m"][0]) < 0.6 * (om[-1] - om[0])
    assert assess(r["omega_m"], r["sigma_8"], tempered_grid_2d(r["omega_m"], r["sigma_8"], r["log_likelihood"],
                                                               tempering, r["box_log_likelihood"]), BOUNDS) == CUT
    with pytest.raises(ParameterError, match="not both"):
        next(zoomed_grid_2d(model, cat, tempering=tempering, temperatures=(2.0, 2.0)))


def test_tempered_deficits_combine_the_interpolated_terms():
    """network_tempered_deficits_2d (box and network interpolated once) equals the direct truth deficits of the
    tempered grid at every T_net (the interpolant is linear in the data)."""
    from lssviewer.model.likelihood import network_tempered_deficits_2d, truth_profile_deficits_2d

    rng = np.random.default_rng(3)
    om, s8 = np.linspace(0.25, 0.35, 11), np.linspace(0.75, 0.85, 9)
    a, b = np.meshgrid(om, s8, indexing="ij")
    box = -0.5 * (((a - 0.3) / 0.03) ** 2 + ((b - 0.8) / 0.02) ** 2)
    ll = box - 0.5 * (((a - 0.31) / 0.005) ** 2 + ((b - 0.79) / 0.004) ** 2) + 0.01 * rng.normal(size=a.shape)
    truth, ts = (0.305, 0.797), (1.0, 2.5, 7.0)
    d2, dp = network_tempered_deficits_2d(om, s8, ll, box, truth, ts)
    for k, t in enumerate(ts):
        tempered = tempered_grid_2d(om, s8, ll, Tempering(network=t), box)
        assert d2[k] == pytest.approx(truth_deficit_2d(om, s8, tempered, truth), abs=1e-9)
        np.testing.assert_allclose(dp[k], truth_profile_deficits_2d(om, s8, tempered, truth), atol=1e-9)
    d2_out, dp_out = network_tempered_deficits_2d(om, s8, ll, box, (0.45, 0.8), ts)
    assert np.all(np.isinf(d2_out)) and np.all(np.isinf(dp_out[:, 0])) and np.all(np.isfinite(dp_out[:, 1]))


def test_tempered_profile_deficits_combine_the_interpolated_terms():
    """network_tempered_deficits_1d (box and network splines built once) equals truth_deficit of the tempered
    profile at every T_net (the spline is linear in the data); the profile's own order does not matter."""
    from lssviewer.model.likelihood import network_tempered_deficits_1d, truth_deficit

    rng = np.random.default_rng(4)
    x = np.linspace(0.1, 0.5, 30)
    box = -0.5 * ((x - 0.3) / 0.03) ** 2
    ll = box - 0.5 * ((x - 0.32) / 0.006) ** 2 + 0.02 * rng.normal(size=x.shape)
    ts = (1.0, 3.0, 8.5)
    order = rng.permutation(len(x))
    d = network_tempered_deficits_1d(x[order], ll[order], box[order], 0.305, ts)
    for k, t in enumerate(ts):
        assert d[k] == pytest.approx(truth_deficit(x, Tempering(network=t).apply(ll, box), 0.305), abs=1e-9)
    assert d[0] > d[2] > 0  # the sharp network term, peaked away from the truth, weighs less
    with pytest.raises(ParameterError, match="outside"):
        network_tempered_deficits_1d(x, ll, box, 0.55, ts)
    with pytest.raises(ParameterError, match="equal length"):
        network_tempered_deficits_1d(x, ll, box[:-1], 0.3, ts)
