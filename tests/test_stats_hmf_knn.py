"""Mass function and kNN-CDFs against exact laws for samples drawn from known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from lssviewer import Cosmology, HaloCatalog, stats
from lssviewer.errors import CatalogError, ParameterError


def _catalog(pos: np.ndarray, masses: np.ndarray, box: float) -> HaloCatalog:
    return HaloCatalog(pos, np.zeros_like(pos), masses, box, 0.5, Cosmology(0.3, 0.8))


def test_mass_function_of_a_power_law_sample():
    # Masses from a Pareto law N(>M) = N (M / M0)^-alpha (M >= M0), alpha = 1.3: the cumulative
    # mass function is n(>M) = N (M/M0)^-alpha / V and the expected count in a bin follows from it.
    # Differential bins are independent Poisson (multinomial) counts: chi^2 over bins expecting
    # >= 10 halos within 4.5 sigma of its law. Cumulative values at bin centres: each within
    # 4.5 of its reported Poisson error (they are correlated, so no chi^2).
    rng = np.random.default_rng(11)
    n, alpha, m0, box = 30_000, 1.3, 1e12, 400.0
    masses = m0 * rng.uniform(0, 1, n) ** (-1.0 / alpha)
    cat = _catalog(rng.uniform(0, box, (n, 3)), masses, box)
    edges = np.arange(12.0, 15.01, 0.1)
    res = stats.compute("hmf", cat, edges=edges)
    volume = box**3
    above = n * (10.0**edges / m0) ** -alpha
    expect_count = above[:-1] - above[1:]
    expect_diff = expect_count / volume / 0.1
    ok = expect_count >= 10
    z = (res.values["differential"][0][ok] - expect_diff[ok]) / res.errors["differential"][0][ok]
    assert abs(np.sum(z**2) - ok.sum()) < 4.5 * np.sqrt(2 * ok.sum())
    expect_cum = n * (10.0 ** res.centers / m0) ** -alpha / volume
    zc = (res.values["cumulative"][0] - expect_cum) / res.errors["cumulative"][0]
    assert np.all(np.abs(zc[np.isfinite(zc)]) < 4.5)
    # the differential function integrates to the halos inside the edges
    inside = np.count_nonzero((np.log10(masses) >= 12.0) & (np.log10(masses) <= edges[-1]))
    assert np.sum(res.values["differential"][0] * 0.1) * volume == pytest.approx(inside)


def test_default_mass_edges_cover_every_halo_and_are_shared_between_sets():
    rng = np.random.default_rng(1)
    a = _catalog(rng.uniform(0, 100, (200, 3)), 10 ** rng.uniform(12.13, 14.71, 200), 100.0)
    b = _catalog(rng.uniform(0, 100, (200, 3)), 10 ** rng.uniform(12.5, 15.2, 200), 100.0)
    res = stats.compute("hmf", a)
    assert res.edges[0] <= a.log10_mass.min() and res.edges[-1] >= a.log10_mass.max()
    assert np.sum(res.values["differential"][0] * np.diff(res.edges)) * a.volume == pytest.approx(200)
    sets = stats.compute_sets("hmf", {"a": [a], "b": [b]})
    np.testing.assert_array_equal(sets["a"].edges, sets["b"].edges)
    assert sets["a"].edges[-1] >= b.log10_mass.max()


def test_knn_cdfs_of_uniform_points_follow_the_binomial_law():
    # N uniform points: the k-th neighbour of a random query point is within r with probability
    # P(Binomial(N, V(r)/L^3) >= k), V(r) = 4 pi r^3 / 3. The measured CDFs scatter around it
    # through the random point field (measured: std <= 0.0046 over 20 realisations of this
    # set-up) and the 1e5 queries (<= 0.0016): tolerance 0.025, i.e. > 5 sigma everywhere.
    rng = np.random.default_rng(21)
    n, box = 5000, 500.0
    cat = _catalog(rng.uniform(0, box, (n, 3)), np.full(n, 1e13), box)
    res = stats.compute("knn", cat, ks=(1, 2, 4, 8), seed=3)
    assert res.components == ["1", "2", "4", "8"]
    p = 4.0 / 3.0 * np.pi * res.centers**3 / box**3
    for k in (1, 2, 4, 8):
        theory = sps.binom.sf(k - 1, n, p)
        np.testing.assert_allclose(res.values[str(k)][0], theory, atol=0.025)
        assert np.all(np.diff(res.values[str(k)][0]) >= 0)
    # default radii reach the saturated part of every CDF for a Poisson field
    assert res.values["8"][0][-1] > 0.999
    assert res.meta["n_random"] == 100_000


def test_knn_is_reproducible_and_seeded():
    rng = np.random.default_rng(2)
    cat = _catalog(rng.uniform(0, 100, (300, 3)), np.full(300, 1e13), 100.0)
    a = stats.compute("knn", cat, ks=[1, 3], n_random=5000, seed=1)
    b = stats.compute("knn", cat, ks=[1, 3], n_random=5000, seed=1)
    c = stats.compute("knn", cat, ks=[1, 3], n_random=5000, seed=2)
    np.testing.assert_array_equal(a.values["3"], b.values["3"])
    assert not np.array_equal(a.values["3"], c.values["3"])
    with pytest.raises(CatalogError, match="needs at least 400"):
        stats.compute("knn", cat, ks=[400], n_random=100)
    with pytest.raises(ParameterError, match=">= 1"):
        stats.compute("knn", cat, ks=[0, 1], n_random=100)
