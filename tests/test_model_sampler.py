"""Sampler plumbing: determinism, progress states, cancellation, prior checks (tiny untrained-ish model)."""

from __future__ import annotations

import numpy as np
import pytest
from _model_helpers import tiny_config, toy_catalog, toy_suite

from lssviewer.errors import CatalogError, ParameterError
from lssviewer.model import Cancelled, ScanPoint, load_model
from lssviewer.model.likelihood import grid_2d, profile_1d
from lssviewer.model.train import train


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(toy_suite(16, 8, seed=2), out, tiny_config(steps=3), progress=False)
    return load_model(out, device="cpu")


def test_same_seed_same_sample_and_metadata(model):
    a = model.sample(0.3, 0.8, n=2, seed=7, steps=5)
    b = model.sample(0.3, 0.8, n=2, seed=7, steps=5)
    c = model.sample(0.3, 0.8, n=2, seed=8, steps=5)
    assert len(a) == 2
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.to_array(), y.to_array())
    assert not np.array_equal(a[0].to_array(), c[0].to_array())
    assert not np.array_equal(a[0].to_array(), a[1].to_array())
    cat = a[0]
    assert cat.n_halos == model.n_halos and cat.box_size == model.box_size and cat.redshift == model.redshift
    assert cat.omega_m == 0.3 and cat.sigma_8 == 0.8 and cat.provenance["seed"] == 7
    assert np.all((cat.positions >= 0) & (cat.positions < model.box_size))
    ddim = model.sample(0.3, 0.8, seed=7, steps=5, method="ddim")
    assert np.array_equal(ddim[0].to_array(), model.sample(0.3, 0.8, seed=7, steps=5, method="ddim")[0].to_array())


def test_progress_receives_physical_states_and_cancel_stops(model):
    seen = []
    model.sample(0.25, 0.9, n=3, seed=0, steps=4,
                 progress=lambda step, total, state: seen.append((step, total, state)))
    assert [s[0] for s in seen] == [1, 2, 3, 4] and all(s[1] == 4 for s in seen)
    state = seen[-1][2]
    assert state.dtype == np.float32 and state.shape == (3, model.n_halos, 7)
    assert np.all((state[..., :3] >= 0) & (state[..., :3] <= model.box_size))
    calls = []
    with pytest.raises(Cancelled):
        model.sample(0.3, 0.8, steps=10, cancel=lambda: calls.append(1) or len(calls) > 2)
    assert len(calls) == 3


def test_theta_outside_prior(model):
    with pytest.raises(ParameterError, match="outside the prior box"):
        model.sample(0.05, 0.8)
    with pytest.raises(ParameterError):
        model.sample(0.3, float("nan"), allow_extrapolation=True)
    assert model.sample(0.55, 0.8, steps=2, allow_extrapolation=True)[0].omega_m == 0.55
    cat = toy_catalog(0.3, 0.8, 8, np.random.default_rng(0))
    with pytest.raises(ParameterError, match="outside the prior box"):
        list(model.scan(cat, [[0.3, 0.8], [0.3, 1.2]]))
    with pytest.raises(ParameterError, match="shape"):
        model.scan(cat, [[0.3, 0.8, 1.0]])


def test_scan_streams_points_and_checks_catalogs(model):
    rng = np.random.default_rng(1)
    cat = toy_catalog(0.3, 0.8, 8, rng)
    pts = list(profile_1d(model, cat, "sigma_8", points=5, n_noise=4))
    assert [p.index for p in pts] == list(range(5)) and all(isinstance(p, ScanPoint) for p in pts)
    assert all(p.theta[0] == 0.3 for p in pts) and pts[0].theta[1] == 0.6 and pts[-1].theta[1] == 1.0
    assert all(np.isfinite(p.log_likelihood) and p.stderr > 0 for p in pts)
    assert len(list(grid_2d(model, cat, points=(3, 2), n_noise=2))) == 6
    with pytest.raises(Cancelled):
        list(model.scan(cat, np.tile([0.3, 0.8], (4, 1)), n_noise=4, batch_size=4, cancel=lambda: True))
    with pytest.raises(CatalogError, match="exactly 8"):
        model.scan(toy_catalog(0.3, 0.8, 9, rng), [[0.3, 0.8]])
    with pytest.raises(CatalogError, match="box"):
        model.scan(cat.replace(box_size=200.0), [[0.3, 0.8]])
    with pytest.raises(CatalogError, match="standard deviations"):
        model.scan(cat.replace(masses=cat.masses * 1e30), [[0.3, 0.8]])


def test_conditional_features_scan_matches_point_by_point(tmp_path):
    """With theta-dependent standardisation the catalog is standardised anew at each theta; a scan
    batched over theta (several thetas per forward pass) must equal scans of one theta at a time, and
    samples come back in physical units at their own theta."""
    out = tmp_path / "cond"
    train(toy_suite(16, 8, seed=2), out, tiny_config(steps=3, feature_theta_degree=1), progress=False)
    m = load_model(out, device="cpu")
    assert m.transform.conditional
    cat = toy_catalog(0.3, 0.8, 8, np.random.default_rng(5))
    grid = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.25, 0.95], [0.45, 0.65]])
    batched = [p.log_likelihood for p in m.scan(cat, grid, n_noise=4, seed=3, batch_size=8)]
    single = [next(iter(m.scan(cat, g[None], n_noise=4, seed=3, batch_size=4))).log_likelihood for g in grid]
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-3)
    assert np.ptp(batched) > 1.0  # the per-theta Jacobian and standardisation make theta matter
    s = m.sample(0.3, 0.8, n=2, seed=0, steps=3)
    assert all(np.all(np.isfinite(c.velocities)) and 0 <= c.positions.min() for c in s)


@pytest.mark.parametrize("scales", [(1.0, 1.0), (0.3, 0.5)])
def test_box_standardised_model_scan_and_samples(tmp_path, scales):
    """A box-standardised model: the scan is the network's ELBO of the (theta-independent) standardised
    catalog plus the Gaussian log density of the box statistics and the Jacobian at them (an independent
    computation from the transform); samples carry exactly the box statistics drawn for their seed, and the
    same seed gives the same catalogs. Also with feature scales (velocities / log masses standardised to
    spreads 0.3 / 0.5): the checkpoint keeps them."""
    import torch

    from lssviewer.model.data import theta_to_unit
    from lssviewer.model.features import box_statistics, catalog_to_raw
    from lssviewer.model.likelihood import elbo_scan

    out = tmp_path / "box"
    train(toy_suite(16, 8, seed=2), out, tiny_config(steps=3, feature_theta_degree=1, feature_per_box=True,
                                                     feature_velocity_scale=scales[0], feature_mass_scale=scales[1]),
          progress=False)
    m = load_model(out, device="cpu")
    assert m.transform.per_box and not m.transform.theta_dependent
    assert (m.transform.velocity_scale, m.transform.mass_scale) == scales
    cat = toy_catalog(0.3, 0.8, 8, np.random.default_rng(5))
    grid = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.25, 0.95], [0.45, 0.65]])
    pts = list(m.scan(cat, grid, n_noise=4, seed=3, batch_size=8))
    scan = np.array([p.log_likelihood for p in pts])
    unit = theta_to_unit(grid, m.prior)
    raw = catalog_to_raw(cat)
    x = torch.as_tensor(m.transform.standardise(raw), dtype=torch.float32)
    net = np.array([v for _, v, _ in elbo_scan(m.vdm, x, torch.as_tensor(unit, dtype=torch.float32), n_noise=4,
                                               seed=3, batch_size=8)])
    box = box_statistics(raw)
    expect = net + m.transform.box_log_prob(box, unit) + m.transform.log_jacobian(8, box=box)
    np.testing.assert_allclose(scan, expect, rtol=0, atol=1e-3)
    # each point names its box statistics' part; the rest is the network's ELBO plus a theta-independent Jacobian
    box_part = np.array([p.box_log_likelihood for p in pts])
    np.testing.assert_allclose(box_part, m.transform.box_log_prob(box, unit), rtol=0, atol=1e-9)
    np.testing.assert_allclose(box_part, m.box_log_likelihood(cat, grid), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scan - box_part, net + m.transform.log_jacobian(8, box=box), rtol=0, atol=1e-3)
    s = m.sample(0.27, 0.83, n=3, seed=4, steps=3)  # a theta whose unit coordinates are not exact in float32
    drawn = m.transform.draw_box_statistics(theta_to_unit(np.tile([0.27, 0.83], (3, 1)), m.prior),
                                            np.random.default_rng(4))
    got = box_statistics(np.stack([catalog_to_raw(c) for c in s]))
    np.testing.assert_allclose(got, drawn, atol=1e-9)
    # the projection fixes velocities and masses only: positions are the network's, unstandardised (the last
    # progress state is the denoised estimate of the final step, not the decoder mean, so compare with that)
    from lssviewer.model.sampler import sample as raw_sample

    th = torch.as_tensor(theta_to_unit(np.tile([0.27, 0.83], (3, 1)), m.prior), dtype=torch.float32)
    x = raw_sample(m.vdm, th, m.n_halos, 3, torch.Generator().manual_seed(4), method=m.sampler,
                   final=m.sampler_final, spacing=m.sampler_spacing)
    expect_pos = np.mod(x[..., :3].double().numpy() * (1.0 / np.sqrt(12.0)) + 0.5, 1.0) * m.box_size
    np.testing.assert_allclose(np.stack([c.positions for c in s]), expect_pos, atol=1e-6 * m.box_size)
    again = m.sample(0.27, 0.83, n=3, seed=4, steps=3)
    assert all(np.array_equal(a.to_array(), b.to_array()) for a, b in zip(s, again, strict=True))
    # units: masses in 1e10 Msun/h put the mean log mass 10 dex (> 100 sd of its scatter) from every
    # cosmology's: refused, not scored
    with pytest.raises(CatalogError, match="standard deviations"):
        m.scan(cat.replace(masses=cat.masses * 1e-10), grid)


def test_sampler_starts_from_a_given_latent(model):
    """t_start / z_start (SDEdit-style denoising, benchmarks/bench_small_scales.py): starting at t = 1 from the
    prior draw the sampler would make itself gives the same catalogs, and starting close to t = 0 from alpha_t x
    returns x up to the remaining noise scale sigma_t / alpha_t (whatever the network predicts, |eps_hat| is O(1))."""
    import torch

    from lssviewer.model.sampler import sample
    from lssviewer.model.schedule import alpha_sigma

    vdm, n = model.vdm, model.n_halos
    theta = torch.full((2, 2), 0.5)
    ref = sample(vdm, theta, n, 4, torch.Generator().manual_seed(3), method="ddim")
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn((2, n, 7), generator=gen)
    assert torch.equal(sample(vdm, theta, n, 4, gen, method="ddim", z_start=z1), ref)
    x = torch.randn((2, n, 7), generator=torch.Generator().manual_seed(4))
    t = 0.02
    with torch.no_grad():
        a, s = alpha_sigma(vdm.schedule(torch.tensor([t]))[0][0])
    for method in ("ddim", "dpm2", "ancestral"):
        out = sample(vdm, theta, n, 3, torch.Generator().manual_seed(5), method=method, t_start=t, z_start=a * x)
        assert float((out - x).abs().max()) < 10.0 * float(s / a)
    with pytest.raises(ValueError, match="needs z_start"):
        sample(vdm, theta, n, 3, gen, t_start=0.5)
    with pytest.raises(ValueError, match="t_start"):
        sample(vdm, theta, n, 3, gen, t_start=0.0, z_start=z1)
    with pytest.raises(ValueError, match="shape"):
        sample(vdm, theta, n, 3, gen, z_start=z1[:1])


def test_final_denoising_step(model):
    """final="denoise" returns the network's data estimate (z_0 - sigma_0 eps_hat(z_0)) / alpha_0 at the very
    latent whose decoder mean final="decoder_mean" returns (same seed: the extra step draws no random numbers);
    new checkpoints store it as their default, older ones (no "final" in model.json) keep the decoder mean."""
    import torch

    from lssviewer.model.sampler import sample
    from lssviewer.model.schedule import alpha_sigma

    vdm, n = model.vdm, model.n_halos
    theta = torch.full((2, 2), 0.4)
    for method in ("dpm2", "ancestral"):
        mean = sample(vdm, theta, n, 4, torch.Generator().manual_seed(9), method=method, final="decoder_mean")
        out = sample(vdm, theta, n, 4, torch.Generator().manual_seed(9), method=method, final="denoise")
        with torch.no_grad():
            g0 = vdm.schedule(torch.zeros(1))[0][0]
            a0, s0 = alpha_sigma(g0)
            z0 = a0 * mean
            expected = (z0 - s0 * vdm.eps_hat(z0, g0.expand(2), theta).float()) / a0
        assert torch.allclose(out, expected, atol=1e-5)
        assert not torch.equal(out, mean)
    with pytest.raises(ValueError, match="final step"):
        sample(vdm, theta, n, 2, torch.Generator(), final="xhat")
    assert model.sampler_final == "denoise" and model.meta["sampler"]["final"] == "denoise"
    a = model.sample(0.3, 0.8, seed=4, steps=3)
    assert a[0].provenance["final"] == "denoise"
    assert np.array_equal(a[0].to_array(), model.sample(0.3, 0.8, seed=4, steps=3, final="denoise")[0].to_array())
    b = model.sample(0.3, 0.8, seed=4, steps=3, final="decoder_mean")
    assert b[0].provenance["final"] == "decoder_mean" and not np.array_equal(a[0].to_array(), b[0].to_array())
    with pytest.raises(ParameterError, match="final step"):
        model.sample(0.3, 0.8, steps=2, final="xhat")


def test_checkpoints_without_a_final_step_keep_the_decoder_mean_and_time_steps(model, tmp_path):
    import json
    import shutil

    src = model.path
    dst = tmp_path / "old"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    del meta["sampler"]["final"], meta["sampler"]["spacing"]
    (dst / "model.json").write_text(json.dumps(meta))
    old = load_model(dst, device="cpu")
    assert old.sampler_final == "decoder_mean" and old.sampler_spacing == "time"
    a = old.sample(0.3, 0.8, seed=4, steps=3)[0]
    b = model.sample(0.3, 0.8, seed=4, steps=3, final="decoder_mean", spacing="time")[0]
    assert np.array_equal(a.to_array(), b.to_array())
    meta["sampler"]["final"] = "bogus"
    (dst / "model.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="final step"):
        load_model(dst, device="cpu")


def test_log_snr_step_spacing(model):
    """spacing="logsnr" puts the steps uniformly in gamma = -log SNR of the learned schedule (ends exact, the
    inversion of gamma(t) good to far below a step), "time" uniformly in t; the checkpoint's default is stored
    and older checkpoints keep "time"."""
    import torch

    from lssviewer.model.sampler import sample, time_grid

    vdm = model.vdm
    with torch.no_grad():
        ts = time_grid(vdm, 1.0, 8, "logsnr", "cpu")
        g = vdm.schedule(ts)[0]
        g_ends = vdm.schedule(torch.tensor([1.0, 0.0]))[0]
    assert float(ts[0]) == 1.0 and float(ts[-1]) == 0.0 and bool(torch.all(ts[1:] < ts[:-1]))
    expect = torch.linspace(float(g_ends[0]), float(g_ends[1]), 9)
    step = float(g_ends[0] - g_ends[1]) / 8
    assert float((g - expect).abs().max()) < 1e-3 * step
    assert torch.equal(time_grid(vdm, 0.5, 4, "time", "cpu"), torch.linspace(0.5, 0.0, 5))
    with torch.no_grad():
        g_half = vdm.schedule(time_grid(vdm, 0.5, 4, "logsnr", "cpu"))[0]
    assert float((g_half[1:] - g_half[:-1]).std()) < 1e-3 * float(g_half[0] - g_half[-1])
    with pytest.raises(ValueError, match="step spacing"):
        time_grid(vdm, 1.0, 4, "karras", "cpu")
    theta = torch.full((1, 2), 0.4)
    a = sample(vdm, theta, model.n_halos, 4, torch.Generator().manual_seed(1), method="dpm2", spacing="logsnr")
    b = sample(vdm, theta, model.n_halos, 4, torch.Generator().manual_seed(1), method="dpm2", spacing="logsnr")
    c = sample(vdm, theta, model.n_halos, 4, torch.Generator().manual_seed(1), method="dpm2", spacing="time")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.sampler_spacing == "logsnr" and model.meta["sampler"]["spacing"] == "logsnr"
    cat = model.sample(0.3, 0.8, seed=2, steps=3)[0]
    assert cat.provenance["spacing"] == "logsnr"
    other = model.sample(0.3, 0.8, seed=2, steps=3, spacing="time")[0]
    assert other.provenance["spacing"] == "time" and not np.array_equal(cat.to_array(), other.to_array())
    with pytest.raises(ParameterError, match="step spacing"):
        model.sample(0.3, 0.8, steps=2, spacing="karras")
