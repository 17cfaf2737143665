"""Features, periodic-box augmentation and posterior summaries of the model (closed-form checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from lssviewer.errors import ParameterError
from lssviewer.model.features import FeatureTransform, augment, catalog_to_raw, cube_symmetries, raw_to_physical
from lssviewer.model.likelihood import summarize_grid_2d, summarize_profile


def test_48_cube_symmetries_form_the_full_group():
    perms, signs = cube_symmetries()
    mats = np.zeros((48, 3, 3))
    for k in range(48):
        mats[k, np.arange(3), perms[k]] = signs[k]
    assert len({m.tobytes() for m in mats}) == 48
    for m in mats:
        assert np.allclose(m @ m.T, np.eye(3)) and abs(abs(np.linalg.det(m)) - 1) < 1e-12
    # closed under composition: a group of order 48 (the full octahedral group O_h)
    keys = {m.tobytes() for m in mats}
    assert all((a @ b).tobytes() in keys for a in mats[::5] for b in mats[::7])


def _minimal_image(d):
    return d - np.round(d)


def test_augmentation_is_an_isometry_of_the_torus_and_keeps_pairwise_velocities():
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.uniform(0, 1, (3, 40, 3)), rng.normal(0, 300, (3, 40, 3)),
                          rng.normal(13, 0.3, (3, 40, 1))], axis=-1)
    out = augment(torch.tensor(raw), torch.Generator().manual_seed(1)).numpy()
    assert np.all((out[..., :3] >= 0) & (out[..., :3] < 1))
    assert np.array_equal(out[..., 6], raw[..., 6])
    for b in range(3):
        for arr in (raw[b], out[b]):
            assert arr.shape == (40, 7)
        d0 = _minimal_image(raw[b, :, None, :3] - raw[b, None, :, :3])
        d1 = _minimal_image(out[b, :, None, :3] - out[b, None, :, :3])
        r0, r1 = np.linalg.norm(d0, axis=-1), np.linalg.norm(d1, axis=-1)
        assert np.allclose(r0, r1, atol=1e-12)  # pair separations on the torus are unchanged
        # radial relative velocity (v_j - v_i) . r_hat_ij: the quantity of the pairwise velocity statistic
        off = ~np.eye(40, dtype=bool)
        dv0 = raw[b, None, :, 3:6] - raw[b, :, None, 3:6]
        dv1 = out[b, None, :, 3:6] - out[b, :, None, 3:6]
        v0 = np.sum(dv0 * -d0, -1)[off] / r0[off]
        v1 = np.sum(dv1 * -d1, -1)[off] / r1[off]
        assert np.allclose(v0, v1, atol=1e-9)
        assert np.allclose(np.sort(np.linalg.norm(raw[b, :, 3:6], axis=-1)),
                           np.sort(np.linalg.norm(out[b, :, 3:6], axis=-1)))
    assert not np.allclose(out[..., :3], raw[..., :3])  # it did something


def test_augmentation_draws_all_symmetries_uniformly():
    raw = torch.zeros(4800, 1, 7, dtype=torch.float64)
    raw[:, 0, 3:6] = torch.tensor([1.0, 2.0, 3.0])  # a velocity whose image identifies the symmetry
    out = augment(raw, torch.Generator().manual_seed(2), shifts=False)
    keys, counts = np.unique(out[:, 0, 3:6].numpy(), axis=0, return_counts=True)
    assert len(keys) == 48
    # multinomial counts, expected 100 each: 5.5 sigma bounds for 48 cells
    assert counts.min() > 45 and counts.max() < 155


def test_standardisation_round_trip_symmetry_and_jacobian():
    rng = np.random.default_rng(3)
    raw = np.concatenate([rng.uniform(0, 1, (50, 3)), rng.normal(0, 200, (50, 3)), rng.normal(13, 0.4, (50, 1))], 1)
    tr = FeatureTransform.fit(raw, box_size=250.0)
    z = tr.standardise(raw)
    assert np.allclose(tr.unstandardise(z), raw)
    assert np.allclose(z[:, 6].mean(), 0, atol=1e-12) and np.allclose(z[:, 6].std(), 1)
    flipped = raw.copy()
    flipped[:, :3] = 1 - raw[:, :3]
    flipped[:, 3:6] = -raw[:, 3:6]
    assert np.allclose(tr.standardise(flipped)[:, :6], -z[:, :6])  # reflections commute with it
    assert tr == FeatureTransform.from_dict(tr.to_dict())
    # log |dz/dphys| for one halo, from the definition (x = u L)
    expect = -(3 * np.log(250.0 / np.sqrt(12)) + 3 * np.log(tr.velocity_std) + np.log(tr.mass_std))
    assert np.isclose(tr.log_jacobian(1), expect)
    phys = raw_to_physical(raw + np.array([1.0, -1.0, 0, 0, 0, 0, 0]), 250.0)
    assert np.allclose(phys[:, :3], raw[:, :3] * 250.0)


def test_catalog_to_raw_units():
    from _model_helpers import toy_catalog

    cat = toy_catalog(0.3, 0.8, 10, np.random.default_rng(0))
    raw = catalog_to_raw(cat)
    assert np.allclose(raw[:, :3] * cat.box_size, cat.positions)
    assert np.allclose(raw[:, 6], np.log10(cat.masses))


def test_summarize_profile_gaussian_thresholds():
    mu, sig = 0.31, 0.04
    grid = np.linspace(0.1, 0.5, 41)
    ll = -0.5 * ((grid - mu) / sig) ** 2 + 123.0
    s = summarize_profile(grid, ll)
    assert abs(s["map"] - mu) < 1e-3
    # Delta log L = chi2_1(68.27 %)/2 = 0.5 -> mu +- sigma; chi2_1(95 %)/2 = 1.92 -> mu +- 1.96 sigma
    assert np.allclose(s["interval68"], [mu - sig, mu + sig], atol=2e-3)
    assert np.allclose(s["interval95"], [mu - 1.96 * sig, mu + 1.96 * sig], atol=2e-3)
    assert np.allclose(s["credible68"], [mu - sig, mu + sig], atol=2e-3)
    assert abs(s["posterior_std"] - sig) < 1e-3 and not s["truncated68"]
    edge = summarize_profile(grid, -0.5 * ((grid - 0.11) / sig) ** 2)
    assert edge["truncated95"] and edge["interval95"][0] == pytest.approx(0.1)
    with pytest.raises(ParameterError):
        summarize_profile(grid, ll[:-1])
    # a profile only ~1.4 grid steps wide (sigma = 0.014, step 0.01), peak between nodes: the MAP and the
    # interval are not snapped to the nodes (a monotone interpolant would put the MAP on 0.31 or 0.32)
    mu, sig = 0.3137, 0.014
    narrow = summarize_profile(grid, -0.5 * ((grid - mu) / sig) ** 2)
    assert abs(narrow["map"] - mu) < 0.1 * 0.01
    assert np.allclose(narrow["interval68"], [mu - sig, mu + sig], atol=0.1 * sig)


def test_summarize_grid_2d_levels_and_profiles():
    om, s8 = np.linspace(0.1, 0.5, 41), np.linspace(0.6, 1.0, 41)
    a, b = np.meshgrid(om, s8, indexing="ij")
    ll = -0.5 * (((a - 0.3) / 0.03) ** 2 + ((b - 0.8) / 0.05) ** 2)
    s = summarize_grid_2d(om, s8, ll)
    assert np.allclose(s["map"], [0.3, 0.8])
    assert np.isclose(s["levels"]["68"], -chi2.ppf(0.6827, 2) / 2) and np.isclose(s["levels"]["68"], -1.148, atol=1e-3)
    assert np.isclose(s["levels"]["95"], -2.996, atol=1e-3)
    assert np.allclose(s["omega_m"]["interval68"], [0.27, 0.33], atol=2e-3)
    assert np.allclose(s["sigma_8"]["marginal"]["credible68"], [0.75, 0.85], atol=3e-3)


def test_conditional_standardisation_fits_polynomials_and_its_jacobian():
    """Per-box mass scale and velocity dispersion that are exact polynomials (in log for the stds) of
    theta are recovered; standardising at each box's theta removes them; the Jacobian is the analytic
    one of the per-theta affine map (checked by finite differences of unstandardise)."""
    rng = np.random.default_rng(3)
    th = rng.uniform(0, 1, (60, 2))
    n = 200
    mass_mean = 13.0 + 0.5 * th[:, 0] + 0.2 * th[:, 1] ** 2
    log_mass_std = np.log(0.3) - 0.4 * th[:, 0] * th[:, 1]
    log_vstd = np.log(300.0) + 0.5 * th[:, 1]
    raw = np.empty((60, n, 7))
    for b in range(60):
        z = rng.normal(size=(n, 4))
        z = (z - z.mean(0)) / z.std(0)  # exact per-box moments, so the fit is exact
        raw[b, :, :3] = rng.uniform(0, 1, (n, 3))
        v = rng.normal(size=(n, 3))
        raw[b, :, 3:6] = v / np.sqrt(np.mean(v**2)) * np.exp(log_vstd[b])
        raw[b, :, 6] = mass_mean[b] + np.exp(log_mass_std[b]) * z[:, 0]
    tr = FeatureTransform.fit(raw, 250.0, th, degree=2)
    assert tr.conditional and FeatureTransform.from_dict(tr.to_dict()) == tr
    x = tr.standardise(raw, th)
    np.testing.assert_allclose(x[..., 6].mean(1), 0.0, atol=1e-9)
    np.testing.assert_allclose(x[..., 6].std(1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.mean(x[..., 3:6] ** 2, axis=(1, 2))), 1.0, rtol=1e-9)
    np.testing.assert_allclose(tr.unstandardise(x, th), raw, rtol=1e-12, atol=1e-12)
    # torch path agrees with numpy
    xt = tr.standardise(torch.as_tensor(raw[:3]), torch.as_tensor(th[:3]))
    np.testing.assert_allclose(xt.numpy(), x[:3], rtol=1e-10)
    # Jacobian of unstandardise at one theta, by finite differences, vs log_jacobian
    t0 = th[5]
    z0 = np.zeros((1, 7))
    h = 1e-6
    diag = [(tr.unstandardise(z0 + h * np.eye(7)[i], t0) - tr.unstandardise(z0, t0))[0, i] / h for i in range(7)]
    diag = np.array(diag)
    diag[:3] *= 250.0  # box fractions -> Mpc/h
    assert np.isclose(tr.log_jacobian(1, t0), -np.sum(np.log(diag)), rtol=1e-6)
    assert np.allclose(tr.log_jacobian(3, th[:4]), [3 * tr.log_jacobian(1, t) for t in th[:4]])
    with pytest.raises(ValueError):
        tr.standardise(raw)  # conditional: theta needed
    # 5 distinct cosmologies (x 12 seeds) cannot fix the 10 coefficients of a cubic: refused, not guessed
    from lssviewer.errors import CatalogError

    with pytest.raises(CatalogError, match="too few distinct theta"):
        FeatureTransform.fit(raw, 250.0, np.repeat(th[:5], 12, axis=0), degree=3)


def _box_suite(rng, n_boxes=4000, n=20):
    """Boxes whose statistics (mass mean, log mass std, log rms velocity) are a linear function of theta plus a
    Gaussian scatter with log standard deviations linear in theta and a fixed correlation (each box's moments
    set exactly). Returns raw, theta, statistics, and the true sd(theta) and correlation."""
    th = rng.uniform(0, 1, (n_boxes, 2))
    mean = np.column_stack([13.0 + 0.5 * th[:, 0], np.log(0.3) - 0.2 * th[:, 1], np.log(300.0) + 0.4 * th[:, 1]])
    sd = np.exp(np.column_stack([np.log(0.02) - 0.6 * th[:, 0], np.full(n_boxes, np.log(0.05)),
                                 np.log(0.06) - 1.0 * th[:, 0] + 0.3 * th[:, 1]]))
    corr = np.array([[1.0, 0.3, 0.5], [0.3, 1.0, 0.0], [0.5, 0.0, 1.0]])
    stats = mean + sd * (rng.standard_normal((n_boxes, 3)) @ np.linalg.cholesky(corr).T)
    raw = np.empty((n_boxes, n, 7))
    raw[..., :3] = rng.uniform(0, 1, (n_boxes, n, 3))
    m = rng.normal(size=(n_boxes, n))
    m = (m - m.mean(1, keepdims=True)) / m.std(1, keepdims=True)
    raw[..., 6] = stats[:, :1] + np.exp(stats[:, 1:2]) * m
    v = rng.normal(size=(n_boxes, n, 3))
    raw[..., 3:6] = v / np.sqrt(np.mean(v**2, axis=(1, 2), keepdims=True)) * np.exp(stats[:, 2])[:, None, None]
    return raw, th, stats, sd, corr


def test_box_standardisation_fits_the_scatter_of_the_box_statistics():
    """Box standardisation: each catalog by its own statistics (theta ignored, exact zero-mean / unit-spread
    masses and unit-rms velocities, invertible given the statistics, numpy == torch); the theta polynomials,
    the theta-dependent scatter and the correlations are recovered; the box term is the exact Gaussian log
    density; draws from it have that covariance.

    Tolerances (4,000 boxes): log r^2 / 2 scatters by sqrt(var(log chi^2_1) / 4) = 1.11 per box, so a fitted
    log sd has sd 1.11 / sqrt(4000) = 0.018 at the centre of the prior and sqrt(7) x that = 0.046 at a corner
    (linear regression on a uniform square): bound 0.2 (> 4 sd); a correlation has sd ~ 1 / sqrt(4000) = 0.016,
    bound 0.08; the fitted mean at the centre has sd ~ sd / sqrt(4000), bound 5 of them.
    """
    from scipy.stats import multivariate_normal

    from lssviewer.errors import CatalogError
    from lssviewer.model.features import box_statistics

    rng = np.random.default_rng(11)
    raw, th, stats, sd, corr = _box_suite(rng)
    np.testing.assert_allclose(box_statistics(raw), stats, atol=1e-10)
    tr = FeatureTransform.fit(raw, 250.0, th, degree=1, per_box=True, sd_degree=1)
    assert tr.per_box and tr.conditional and not tr.theta_dependent
    assert FeatureTransform.from_dict(tr.to_dict()) == tr
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    true_sd = np.exp(np.column_stack([np.log(0.02) - 0.6 * corners[:, 0], np.full(5, np.log(0.05)),
                                      np.log(0.06) - corners[:, 0] + 0.3 * corners[:, 1]]))
    assert np.all(np.abs(np.log(tr.box_sd(corners) / true_sd)) <= 0.2), tr.box_sd(corners) / true_sd
    assert np.all(np.abs(np.asarray(tr.box_corr) - corr) <= 0.08), tr.box_corr
    centre = tr.box_mean(np.array([0.5, 0.5])) - [13.25, np.log(0.3) - 0.1, np.log(300.0) + 0.2]
    assert np.all(np.abs(centre) <= 5 * true_sd[4] / np.sqrt(4000))
    x = tr.standardise(raw, th)
    np.testing.assert_array_equal(x, tr.standardise(raw))  # theta plays no part
    np.testing.assert_allclose(box_statistics(x), 0.0, atol=1e-12)
    np.testing.assert_allclose(tr.unstandardise(x, box=stats), raw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tr.standardise(torch.as_tensor(raw[:3])).numpy(), x[:3], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="box statistics"):
        tr.unstandardise(x, th)
    # projecting standardised catalogs (samples): idempotent on the standardised set, positions untouched
    np.testing.assert_allclose(tr.project(x, standardised=True), x, atol=1e-12)
    off = x * np.array([1.3, 0.7, 1.1, 1.2, 1.2, 0.9, 1.5]) + np.array([0.1, -0.2, 0.3, 0.0, 0.0, 0.0, 0.4])
    proj = tr.project(off, standardised=True)
    np.testing.assert_array_equal(proj[..., :3], off[..., :3])
    np.testing.assert_allclose(box_statistics(proj), 0.0, atol=1e-12)
    # the box term: the Gaussian log density of the statistics at theta, plus a theta-independent Jacobian
    grid = rng.uniform(0, 1, (5, 2))
    expect = [multivariate_normal(tr.box_mean(t), tr.box_cov(t)).logpdf(stats[0]) for t in grid]
    np.testing.assert_allclose(tr.box_log_prob(stats[0], grid), expect, rtol=1e-10)
    terms = tr.log_density_terms(raw[0], grid)
    np.testing.assert_allclose(terms - np.asarray(expect), tr.log_jacobian(raw.shape[1], box=stats[0]), rtol=1e-10)
    # draws: 4000 at one theta; covariance elements within 0.1 sd_i sd_j (sd of the estimate ~ 0.016-0.022 of it)
    t0 = np.array([0.3, 0.7])
    draws = tr.draw_box_statistics(np.tile(t0, (4000, 1)), np.random.default_rng(0))
    scale = np.outer(tr.box_sd(t0), tr.box_sd(t0))
    assert np.all(np.abs(np.cov(draws.T) - tr.box_cov(t0)) <= 0.1 * scale)
    with pytest.raises(CatalogError, match="theta_degree"):
        FeatureTransform.fit(raw, 250.0, th, degree=0, per_box=True)
    bad = tr.to_dict()
    bad["box_corr"] = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # not positive definite
    with pytest.raises(ValueError, match="positive definite"):
        FeatureTransform.from_dict(bad)


@pytest.mark.parametrize("per_box", [False, True])
def test_feature_scales_set_the_standardised_spread_and_enter_the_jacobian(per_box):
    """velocity_scale / mass_scale: the standardised velocities have rms velocity_scale and the log masses std
    mass_scale (box standardisation: exactly, per box), the transform stays invertible, the projection of samples
    lands on that set, the checkpoint dict round-trips (old dicts without the keys read as 1), and the log
    Jacobian grows by exactly N (3 log velocity_scale + log mass_scale): the density of standardised features
    scaled by s is the unscaled one divided by s per dimension, so log p(physical) is unchanged."""
    rng = np.random.default_rng(3)
    raw, th, stats, _, _ = _box_suite(rng)
    raw, th, stats = raw[:200], th[:200], stats[:200]
    kw = dict(degree=1, per_box=True, sd_degree=1) if per_box else {}
    base = FeatureTransform.fit(raw, 250.0, th if per_box else None, **kw)
    tr = FeatureTransform.fit(raw, 250.0, th if per_box else None, velocity_scale=0.25, mass_scale=0.5, **kw)
    assert FeatureTransform.from_dict(tr.to_dict()) == tr
    assert "velocity_scale" not in base.to_dict() and FeatureTransform.from_dict(base.to_dict()) == base
    x0, x = base.standardise(raw), tr.standardise(raw)
    np.testing.assert_allclose(x[..., :3], x0[..., :3], atol=1e-12)
    np.testing.assert_allclose(x[..., 3:6], 0.25 * x0[..., 3:6], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x[..., 6], 0.5 * x0[..., 6], rtol=1e-10, atol=1e-12)
    if per_box:
        np.testing.assert_allclose(np.sqrt(np.mean(x[..., 3:6] ** 2, axis=(1, 2))), 0.25, rtol=1e-10)
        np.testing.assert_allclose(x[..., 6].std(1), 0.5, rtol=1e-10)
        np.testing.assert_allclose(tr.unstandardise(x, box=stats), raw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tr.project(1.7 * x, standardised=True)[..., 3:], x[..., 3:], atol=1e-12)
        jac, jac0 = tr.log_jacobian(raw.shape[1], box=stats[0]), base.log_jacobian(raw.shape[1], box=stats[0])
    else:
        np.testing.assert_allclose(tr.unstandardise(x), raw, rtol=1e-12, atol=1e-12)
        jac, jac0 = tr.log_jacobian(raw.shape[1]), base.log_jacobian(raw.shape[1])
    assert jac - jac0 == pytest.approx(raw.shape[1] * (3 * np.log(0.25) + np.log(0.5)), rel=1e-12)
    with pytest.raises(ValueError, match="velocity_scale"):
        FeatureTransform.fit(raw, 250.0, velocity_scale=0.0)
