"""The VDM maths, checked against closed forms (no training involved).

The key check: with the *exact* denoiser of Gaussian data plugged in as the score network, the
continuous-time ELBO must equal the exact log-likelihood (the bound is tight for the true reverse
process, up to O(e^gamma_0) smoothing corrections of ~1e-5 nats per dimension here), so
ELBO - log L must be consistent with zero within the estimator's own standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _model_helpers import tiny_config

from lssviewer.errors import ParameterError
from lssviewer.model.likelihood import crn_draws, elbo_scan, stratified_stderr
from lssviewer.model.network import NetworkConfig, ScoreNetwork
from lssviewer.model.schedule import NoiseSchedule
from lssviewer.model.train import build_model, validation_elbo
from lssviewer.model.vdm import VDM, low_discrepancy_times


class GaussianDenoiser(torch.nn.Module):
    """Exact E[eps | z_t] for x ~ N(m(theta), s(theta)^2) iid per dimension, m = theta_0, s = 0.5 + theta_1."""

    def forward(self, z, gamma, theta, gamma_range):
        a2, s2 = torch.sigmoid(-gamma)[:, None, None], torch.sigmoid(gamma)[:, None, None]
        m = theta[:, 0][:, None, None]
        s = (0.5 + theta[:, 1])[:, None, None]
        return torch.sqrt(s2) * (z - torch.sqrt(a2) * m) / (a2 * s**2 + s2)


def exact_logpdf(x, m, s):
    return float(np.sum(-0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)))


@pytest.mark.parametrize("schedule", ["linear", "learned"])
def test_elbo_with_exact_denoiser_equals_log_likelihood(schedule):
    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2), schedule=schedule)
    vdm.network = GaussianDenoiser()
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 0.9, (20, 7))  # drawn at theta = (0.3, 0.4)
    thetas = torch.tensor([[0.3, 0.4], [0.0, 0.4], [0.3, 0.9]])
    for antithetic in (False, True):
        pts = list(elbo_scan(vdm, torch.tensor(x, dtype=torch.float32), thetas, n_noise=512, seed=3,
                             batch_size=512, antithetic=antithetic))
        for i, elbo, err in pts:
            m, s = float(thetas[i, 0]), 0.5 + float(thetas[i, 1])
            exact = exact_logpdf(x, m, s)
            # 4 standard errors (the stderr estimator is itself checked below) + 0.02 nats of
            # float32 rounding over 140 dimensions
            assert abs(elbo - exact) < 4 * err + 0.02, (schedule, antithetic, i, elbo, exact, err)


def test_stderr_matches_seed_to_seed_scatter():
    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2), schedule="linear")
    vdm.network = GaussianDenoiser()
    x = torch.tensor(np.random.default_rng(2).normal(0.0, 0.5, (10, 7)), dtype=torch.float32)
    theta = torch.tensor([[0.2, 0.2]])  # a wrong theta, so the diffusion loss carries real variance
    vals, errs = [], []
    for seed in range(40):
        (_, v, e), = elbo_scan(vdm, x, theta, n_noise=16, seed=seed, batch_size=64)
        vals.append(v)
        errs.append(e)
    scatter = float(np.std(vals, ddof=1))
    # the collapsed-strata estimator is conservative: it should not underestimate the true scatter
    # by more than the ~25 % sampling error of a 40-seed std, nor overestimate it by more than 2.5x
    assert 0.75 * scatter < float(np.mean(errs)) < 2.5 * scatter


def test_difference_stderr_matches_seed_to_seed_scatter_of_differences():
    """With common random numbers the difference log L(theta) - log L(theta_ref) is far more precise than either
    value: difference_stderr of the draws elbo_scan_draws keeps must predict the seed-to-seed scatter of the
    differences (same bounds as the absolute stderr above; here 0.85-1.2x of the 40-seed scatter), be 0 at the
    reference, and be much smaller than the absolute stderr for nearby theta."""
    from lssviewer.model.likelihood import difference_stderr, elbo_scan_draws

    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2), schedule="linear")
    vdm.network = GaussianDenoiser()
    x = torch.tensor(np.random.default_rng(2).normal(0.0, 0.5, (10, 7)), dtype=torch.float32)
    theta = torch.tensor([[0.2, 0.2], [0.0, 0.0], [0.05, 0.0], [0.3, 0.6]])  # the truth is (0, 0)
    diffs, errs, absolute = [], [], []
    for seed in range(40):
        pts = list(elbo_scan_draws(vdm, x, theta, n_noise=16, seed=seed, batch_size=64))
        ll = np.array([p[1] for p in pts])
        draws = np.array([p[3] for p in pts])
        assert np.allclose(ll - ll[1], draws.mean(1) - draws[1].mean(), atol=1e-9)  # the draws carry the noise
        e = difference_stderr(draws, 1)
        assert e[1] == 0.0
        diffs.append(ll - ll[1])
        errs.append(e)
        absolute.append([p[2] for p in pts])
    scatter = np.std(diffs, axis=0, ddof=1)
    mean_err = np.mean(errs, axis=0)
    for i in (0, 2, 3):
        assert 0.75 * scatter[i] < mean_err[i] < 2.5 * scatter[i], (i, scatter, mean_err)
    assert mean_err[2] < 0.5 * np.mean(absolute, axis=0)[2]  # a nearby theta: the common noise cancels
    with pytest.raises(ParameterError, match="reference"):
        difference_stderr(np.zeros((3, 4)), 3)


def test_loss_terms_closed_forms():
    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2), gamma_min=-9.0, gamma_max=7.0)
    x = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0))
    terms = vdm(x, torch.rand(3, 2), torch.rand(3), torch.randn(3, 5, 7))
    assert set(terms) == {"reconstruction", "prior", "diffusion"}
    d = 35
    # E[-log N(x; x + e^{g0/2} eps, e^{g0})] = D/2 (1 + log 2 pi + g0)
    assert torch.allclose(terms["reconstruction"], torch.full((3,), 0.5 * d * (1 + math.log(2 * math.pi) - 9.0)))
    # KL(N(alpha_1 x, sigma_1^2) || N(0, 1)) with torch.distributions
    g1 = torch.tensor(7.0)
    q = torch.distributions.Normal(torch.sqrt(torch.sigmoid(-g1)) * x, torch.sqrt(torch.sigmoid(g1)))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(-1)
    assert torch.allclose(terms["prior"], kl, rtol=1e-5, atol=1e-6)
    assert torch.all(terms["diffusion"] >= 0)


def test_schedule_monotone_endpoints_and_derivative():
    sched = NoiseSchedule(-10.0, 8.0, kind="learned")
    with torch.no_grad():
        sched.w3.add_(torch.linspace(-1, 3, len(sched.w3)))  # make it clearly non-linear
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    sched = sched.double().requires_grad_(False)
    g, dg = sched(t)
    assert abs(float(g[0]) + 10.0) < 1e-9 and abs(float(g[-1]) - 8.0) < 1e-9
    assert torch.all(dg > 0) and torch.all(torch.diff(g) > 0)
    h = 1e-6
    fd = (sched(t[1:-1] + h)[0] - sched(t[1:-1] - h)[0]) / (2 * h)
    assert torch.allclose(fd, dg[1:-1], rtol=1e-6, atol=1e-6)


def test_variance_gradient_reaches_only_the_shape():
    """Shape parameters get d/d eta mean(L^2) (VDM sec. 5.2); the network gets d mean(L)."""
    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2), schedule="learned").double()
    x = torch.randn(4, 3, 7, dtype=torch.float64)
    theta, t = torch.rand(4, 2, dtype=torch.float64), torch.rand(4, dtype=torch.float64)
    eps = torch.randn(4, 3, 7, dtype=torch.float64)
    diff = vdm.diffusion_loss(x, theta, t, eps, variance_grad=True)
    vdm.schedule.holder.scale = 2.0 * diff.detach()
    diff.mean().backward()
    got = vdm.schedule.w2.grad.clone()
    vdm.zero_grad()
    vdm.schedule.holder.scale = None
    (vdm.diffusion_loss(x, theta, t, eps).pow(2).mean()).backward()
    assert torch.allclose(got, vdm.schedule.w2.grad, rtol=1e-8, atol=1e-12)


def test_network_is_permutation_equivariant():
    torch.manual_seed(0)
    for induced in (0, 4):
        net = ScoreNetwork(NetworkConfig(d_model=16, n_layers=2, n_heads=2, induced_points=induced))
        for p in net.parameters():  # zero-initialised gates would make this trivial
            torch.nn.init.normal_(p, std=0.2)
        z = torch.randn(2, 9, 7)
        perm = torch.randperm(9)
        g, th = torch.tensor([-3.0, 2.0]), torch.rand(2, 2)
        out = net(z, g, th, (-10.0, 8.0))
        assert torch.allclose(net(z[:, perm], g, th, (-10.0, 8.0)), out[:, perm], atol=1e-5)
        assert out.abs().max() > 0


def test_crn_draws_and_times():
    t, eps = crn_draws(5, 8, seed=0, antithetic=True)
    assert torch.equal(t[0::2], t[1::2]) and torch.equal(eps[0::2], -eps[1::2])
    assert torch.all((t[0::2] >= torch.arange(4) / 4) & (t[0::2] < (torch.arange(4) + 1) / 4))
    t2, eps2 = crn_draws(5, 8, seed=0, antithetic=True)
    assert torch.equal(t, t2) and torch.equal(eps, eps2)
    ld = low_discrepancy_times(10, torch.Generator().manual_seed(0))
    assert torch.allclose(torch.sort(torch.remainder(ld - ld.min(), 1.0)).values, torch.arange(10) / 10, atol=1e-6)
    vals = torch.tensor([[1.0, 3.0, 2.0, 2.0]])
    assert torch.allclose(stratified_stderr(vals), torch.tensor([2.0]) / 4)


def test_validation_elbo_uses_own_draws_per_box():
    """Each validation box has its own fixed draws (seed + its position), so the error of a few stratified times
    averages over the boxes instead of being common to all of them (docs/model.md, "Choosing the checkpoint")."""
    torch.manual_seed(0)
    vdm = build_model(tiny_config()).eval()
    x = torch.randn(3, 8, 7)
    theta = torch.rand(3, 2)
    with torch.no_grad():
        together = validation_elbo(vdm, x, theta, n_noise=2, seed=5)
        alone = [validation_elbo(vdm, x[b:b + 1], theta[b:b + 1], n_noise=2, seed=5 + b) for b in range(3)]
        twice = validation_elbo(vdm, x[[0, 0]], theta[[0, 0]], n_noise=2, seed=5)
        again = validation_elbo(vdm, x, theta, n_noise=2, seed=5)
    assert together == pytest.approx(float(np.mean(alone)), rel=1e-6)
    assert together == again  # fixed draws: comparable from one validation to the next
    assert twice != pytest.approx(alone[0], rel=1e-6)  # the same box in two places gets two sets of draws


def test_wrapped_noise_matches_the_image_sum_and_its_limits():
    """wrapped_noise against a brute-force sum over 401 images (float64), from noise far below the period
    (eps_w = eps) to far above it (eps_w = 0, the wrapped normal uniform); finite gradients in gamma; and the
    wrapped normal's KL from the uniform density against quadrature."""
    from lssviewer.model.vdm import POSITION_PERIOD as P
    from lssviewer.model.vdm import wrapped_noise, wrapped_normal_kl_uniform

    gen = torch.Generator().manual_seed(0)
    eps = torch.randn(200, 300, dtype=torch.float64, generator=gen)
    gamma = torch.linspace(-12.0, 9.0, 200, dtype=torch.float64, requires_grad=True)
    got = wrapped_noise(eps, gamma)
    sigma = torch.exp(0.5 * gamma.detach())[:, None]
    d = sigma * eps
    shifted = (d - P * torch.round(d / P))[..., None] - torch.arange(-200, 201, dtype=torch.float64) * P
    w = torch.softmax(-0.5 * (shifted / sigma[..., None]) ** 2, dim=-1)
    want = (w * shifted).sum(-1) / sigma
    torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-10)
    torch.testing.assert_close(got[:40].detach(), eps[:40], rtol=0, atol=1e-12)  # sigma < P / 70
    assert got[-20:].abs().max() < 1e-12
    got.sum().backward()
    assert torch.isfinite(gamma.grad).all()
    for g in (2 * math.log(0.501 * P), 2 * math.log(0.7 * P), 2 * math.log(P)):
        s = math.exp(g / 2)
        th = torch.linspace(-P / 2, P / 2, 20001, dtype=torch.float64)[:-1]
        q = sum(torch.exp(-0.5 * ((th - k * P) / s) ** 2) for k in range(-20, 21)) / (s * math.sqrt(2 * math.pi))
        kl = float((q * torch.log(q * P)).mean() * P)
        got_kl = float(wrapped_normal_kl_uniform(torch.tensor(g, dtype=torch.float64)))
        assert got_kl == pytest.approx(kl, rel=1e-3, abs=1e-15)
    with pytest.raises(ValueError, match="half the box at t = 1"):
        VDM(NetworkConfig(fourier_features=1, torus=1), gamma_max=2 * math.log(P / 3))


def test_torus_elbo_of_uniform_positions_is_their_exact_log_likelihood():
    """On the torus, positions uniform in the box have the exact score 0 at every noise level, so with eps_hat = 0
    for them the ELBO must equal the exact log-likelihood, -log P per position dimension (P = 1 / UNIFORM_STD,
    the box in standardised units): reconstruction + prior + 1/2 int gamma' E||eps_w||^2 dt = log P (de Bruijn's
    identity for the wrapped normal). The VDM's own terms with eps_hat = 0 (linear schedule, gamma' = 18), less
    the Euclidean features' share 1/2 gamma' ||eps||^2 and N(0, 1) KL; Monte Carlo over 20,000 stratified times
    x 192 position dimensions, matched within 4 of its own standard errors (~0.05 nats of 192 log P = 238)."""
    from lssviewer.model.vdm import POSITION_PERIOD as P
    from lssviewer.model.vdm import wrapped_normal_kl_uniform

    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=8, n_layers=1, n_heads=2, fourier_features=1, torus=1), gamma_min=-10.0,
              gamma_max=8.0, schedule="linear")
    vdm.eps_hat = lambda z, gamma, theta: torch.zeros_like(z)
    b, n = 20000, 64
    x = torch.rand(b, n, 7, dtype=torch.float64) * P - P / 2
    t = low_discrepancy_times(b, torch.Generator().manual_seed(1)).double()
    eps = torch.randn(b, n, 7, dtype=torch.float64)
    with torch.no_grad():
        terms = vdm(x, torch.rand(b, 2), t, eps)
    d_pos = 3 * n
    g1 = torch.tensor(8.0, dtype=torch.float64)
    euclid_kl = 0.5 * (torch.sigmoid(g1) + torch.sigmoid(-g1) * x[..., 3:] ** 2 - torch.nn.functional.logsigmoid(g1)
                       - 1.0).flatten(1).sum(-1)
    prior = terms["prior"] - euclid_kl
    torch.testing.assert_close(prior, torch.full((b,), d_pos * float(wrapped_normal_kl_uniform(g1)),
                                                 dtype=torch.float64), rtol=0, atol=1e-4)  # float32 schedule
    diffusion = terms["diffusion"] - 0.5 * 18.0 * eps[..., 3:].pow(2).flatten(1).sum(-1)
    recon = terms["reconstruction"] * 3 / 7
    nelbo = recon + prior + diffusion
    stderr = float(nelbo.std() / math.sqrt(b))
    assert abs(float(nelbo.mean()) - d_pos * math.log(P)) < 4 * stderr, (float(nelbo.mean()), d_pos * math.log(P),
                                                                        stderr)


def test_torus_position_output_is_tapered_where_the_wrapped_normal_is_uniform():
    """A torus VDM's eps_hat for positions is the network's below a noise of P / 2, exactly 0 from P on (the exact
    eps_w is < 4e-8 there) and in between a monotone taper; velocities and masses are never touched. A
    DPM-Solver++ step over that range then leaves the positions where they are (x_hat = y_t)."""
    from lssviewer.model.sampler import predict
    from lssviewer.model.vdm import POSITION_PERIOD as P
    from lssviewer.model.vdm import position_taper

    torch.manual_seed(0)
    vdm = VDM(NetworkConfig(d_model=16, n_layers=1, n_heads=2, fourier_features=2, torus=1)).eval()
    for p in vdm.network.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    z, theta = torch.randn(4, 10, 7), torch.rand(4, 2)
    gamma = torch.tensor([2 * math.log(0.3 * P), 2 * math.log(0.5 * P), 2 * math.log(1.0 * P), 8.0])
    with torch.no_grad():
        raw = vdm.network(z, gamma, theta, vdm.gamma_range)
        out = vdm.eps_hat(z, gamma, theta)
    torch.testing.assert_close(out[:2], raw[:2])
    assert torch.equal(out[2:, :, :3], torch.zeros_like(out[2:, :, :3])) and torch.equal(out[..., 3:], raw[..., 3:])
    taper = position_taper(torch.linspace(2 * math.log(0.4 * P), 2 * math.log(1.1 * P), 50))
    assert torch.all(taper[1:] <= taper[:-1]) and taper[0] == 1.0 and taper[-1] == 0.0
    with torch.no_grad():
        _, x_hat = predict(vdm, z, torch.tensor(8.0), theta)
    alpha = torch.sqrt(torch.sigmoid(torch.tensor(-8.0)))
    torch.testing.assert_close(x_hat[..., :3], z[..., :3] / alpha)
