"""Network options for small-scale clustering: geometric Fourier bands and the periodic distance bias."""

from __future__ import annotations

import math

import torch

from lssviewer.model.features import UNIFORM_STD, fourier_features
from lssviewer.model.network import NetworkConfig, ScoreNetwork, periodic_sq_distances


def test_geometric_fourier_bands():
    u = torch.tensor([[0.1, 0.2, 0.3]])
    f = fourier_features(u, 4, geometric=True)
    assert f.shape == (1, 24)
    # frequencies 1, 2, 4, 8 along x: sin(2 pi k 0.1) then the cos terms
    expect = torch.sin(2 * math.pi * 0.1 * torch.tensor([1.0, 2.0, 4.0, 8.0]))
    torch.testing.assert_close(f[0, :4], expect)


def _net(seed=0):
    torch.manual_seed(seed)
    net = ScoreNetwork(NetworkConfig(d_model=32, n_layers=2, n_heads=4, cond_dim=32, fourier_features=0,
                                     distance_bias=1))
    for block in net.blocks:  # a strong, non-trivial kernel so that the test exercises the bias
        torch.nn.init.normal_(block.distance_scale.bias, 5.0, 0.5)
        torch.nn.init.normal_(block.ada.weight, 0.0, 0.2)
    torch.nn.init.normal_(net.out.weight, 0.0, 0.2)
    torch.nn.init.normal_(net.ada_out.weight, 0.0, 0.2)
    return net.eval()


def test_distance_bias_is_permutation_equivariant_and_periodic():
    net = _net()
    gamma = torch.tensor([-6.0])  # low noise: alpha ~ 1, the position estimate is z itself
    alpha = math.sqrt(torch.sigmoid(-gamma).item())
    theta = torch.tensor([[0.3, 0.6]])
    u = torch.rand(1, 50, 3)
    rest = torch.randn(1, 50, 4)

    def z_of(u_):
        return torch.cat([(u_ - 0.5) / UNIFORM_STD * alpha, rest], dim=-1)

    with torch.no_grad():
        out = net(z_of(u), gamma, theta, (-10.0, 8.0))
        perm = torch.randperm(50)
        out_p = net(z_of(u)[:, perm], gamma, theta, (-10.0, 8.0))
        torch.testing.assert_close(out_p, out[:, perm], rtol=1e-4, atol=1e-5)
    # the separations the bias uses: minimum image over the 27 periodic images, by brute force
    d2 = periodic_sq_distances(u)[0]
    images = torch.stack(torch.meshgrid(*[torch.tensor([-1.0, 0.0, 1.0])] * 3, indexing="ij"), -1).reshape(27, 3)
    diff = u[0, :, None, None, :] - u[0, None, :, None, :] + images  # (N, N, 27, 3)
    brute = (diff**2).sum(-1).min(-1).values
    torch.testing.assert_close(d2, brute, rtol=1e-5, atol=1e-6)
    shifted = torch.remainder(u + torch.tensor([0.37, 0.81, 0.05]), 1.0)
    torch.testing.assert_close(periodic_sq_distances(shifted)[0], d2, rtol=1e-4, atol=1e-5)
    # minimum image: no separation exceeds half the box diagonal, sqrt(3)/2
    assert d2.max() <= 0.75 + 1e-6


def test_theta_embedding_bandwidth():
    """theta_max_period bounds how fast the theta features can oscillate: at most 0.5 * period rad per
    unit of the prior (so a network built on them cannot single out neighbouring training cosmologies
    through the embedding); checkpoints written before the option keep the old embedding (100)."""
    from lssviewer.model.network import sinusoidal

    assert NetworkConfig.from_dict({"d_model": 32}).theta_max_period == 100
    x = torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)
    for period in (6, 100):
        f = sinusoidal(x, 16, float(period))
        slope = (f[1:] - f[:-1]).abs().max().item() / (x[1] - x[0]).item()
        assert abs(slope - 0.5 * period) < 1e-3 * period  # the highest angular frequency, reached by sin/cos
    net = ScoreNetwork(NetworkConfig(d_model=32, n_layers=1, n_heads=4, cond_dim=32, theta_max_period=6))
    g = torch.zeros(3)
    th = torch.tensor([[0.2, 0.5], [0.2, 0.5], [0.9, 0.1]])
    c = net.conditioning(g, th, (-10.0, 8.0))
    torch.testing.assert_close(c[0], c[1])
    assert not torch.allclose(c[0], c[2])
