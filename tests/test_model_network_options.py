"""Network options for small-scale clustering: geometric Fourier bands, the periodic distance bias, relative phases,
mesh gravity and nearest-neighbour features."""

from __future__ import annotations

import math

import pytest
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


def test_distance_bias_backpropagates_through_the_position_estimate():
    """In training, u = z / alpha_t carries gradients (alpha_t comes from the learned schedule): the separations
    and the bias must be differentiable there (no in-place update of a tensor autograd saved). Gradient of the
    squared separations against the (N, N, 3) difference formula."""
    u = torch.rand(2, 7, 3, dtype=torch.float64, requires_grad=True)
    periodic_sq_distances(u).pow(2).sum().backward()
    v = u.detach().clone().requires_grad_(True)
    du = v[:, :, None, :] - v[:, None, :, :]
    du = du - torch.round(du)
    (du * du).sum(-1).pow(2).sum().backward()
    torch.testing.assert_close(u.grad, v.grad)
    net = _net().train()
    scale = torch.tensor(0.3, requires_grad=True)  # stands in for alpha_t's dependence on the schedule
    z = torch.randn(1, 20, 7) * scale
    net(z, torch.tensor([-1.0]), torch.tensor([[0.3, 0.6]]), (-10.0, 8.0)).square().sum().backward()
    assert scale.grad is not None and torch.isfinite(scale.grad)
    assert all(b.distance_scale.weight.grad is not None for b in net.blocks)


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


def test_relative_phases_are_attention_weighted_periodic_offsets():
    """The relative-phase messages equal sum_j a_ij [cos, sin](2 pi k (u_j - u_i)) with the block's own
    attention weights a_ij (computed here by hand, bias included), and do not change when the whole catalog
    is translated periodically."""
    from lssviewer.model.network import Attention

    torch.manual_seed(1)
    att = Attention(16, 2).eval()
    b, n, k_freq = 1, 30, 3
    x = torch.randn(b, n, 16)
    u = torch.rand(b, n, 3)
    bias = -5.0 * periodic_sq_distances(u)[:, None].expand(-1, 2, -1, -1)

    def phases_of(u_):
        ang = (2 * math.pi * u_[..., :, None] * 2.0 ** torch.arange(k_freq)).flatten(-2)
        return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)

    with torch.no_grad():
        plain, none = att(x, x, bias)
        out, rel = att(x, x, bias, phases_of(u))
        torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)  # the usual output is unchanged
        assert none is None and rel.shape == (b, n, 2 * 6 * k_freq)
        q = att.q(x).view(b, n, 2, 8).transpose(1, 2)
        key = att.kv(x).view(b, n, 2, 2, 8).permute(2, 0, 3, 1, 4)[0]
        a = torch.softmax(q @ key.transpose(-1, -2) / math.sqrt(8) + bias, dim=-1)  # (B, heads, N, N)
        du = (u[:, None, :, :] - u[:, :, None, :])[..., :, None] * 2.0 ** torch.arange(k_freq)  # (B, Ni, Nj, 3, K)
        ang = 2 * math.pi * du.flatten(-2)
        want = torch.cat([torch.einsum("bhij,bijp->bhip", a, torch.cos(ang)),
                          torch.einsum("bhij,bijp->bhip", a, torch.sin(ang))], dim=-1)
        torch.testing.assert_close(rel, want.transpose(1, 2).reshape(b, n, -1), rtol=1e-4, atol=1e-5)
        shifted = torch.remainder(u + torch.tensor([0.37, 0.81, 0.05]), 1.0)
        _, rel_s = att(x, x, bias, phases_of(shifted))
        torch.testing.assert_close(rel_s, rel, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("option, part", [("relative_phases", "rel_out"), ("mesh_gravity", "mesh_out"),
                                          ("neighbours", "nbr_out")])
def test_new_parts_start_as_the_network_without_them(option, part):
    """Zero-initialised new parts (relative phases' rel_out, mesh gravity's mesh_out, the neighbours' nbr_out): a
    network with the option and the weights of one without computes the same eps (so a warm start from an older
    model begins at exactly its function); once the part is non-zero the network stays permutation equivariant."""
    base = _net()
    cfg = dict(base.config.to_dict(), **{option: {"relative_phases": 3, "mesh_gravity": 8, "neighbours": 3}[option]})
    net = ScoreNetwork(NetworkConfig.from_dict(cfg)).eval()
    missing, unexpected = net.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(f".{part}." in m for m in missing)
    z = torch.randn(2, 40, 7)
    gamma, theta = torch.tensor([-6.0, 1.0]), torch.tensor([[0.3, 0.6], [0.7, 0.2]])
    with torch.no_grad():
        torch.testing.assert_close(net(z, gamma, theta, (-10.0, 8.0)), base(z, gamma, theta, (-10.0, 8.0)))
        for block in net.blocks:
            torch.nn.init.normal_(block.rel_out.weight if part == "rel_out" else getattr(block, part).out.weight,
                                  0.0, 0.5)
        out = net(z, gamma, theta, (-10.0, 8.0))
        assert not torch.allclose(out, base(z, gamma, theta, (-10.0, 8.0)))
        perm = torch.randperm(40)
        torch.testing.assert_close(net(z[:, perm], gamma, theta, (-10.0, 8.0)), out[:, perm], rtol=1e-4, atol=1e-5)


def test_torus_network_is_periodic_in_every_position():
    """On the torus (NetworkConfig.torus) the network reads positions only through periodic functions: moving
    any halo by whole periods (of the de-shrunk position z / alpha, in standardised units 1 / UNIFORM_STD) leaves
    every output unchanged, with all position-reading options on. Without it (raw positions in) it changes."""

    opts = dict(d_model=32, n_layers=2, n_heads=4, mlp_ratio=2, cond_dim=32, fourier_features=3, distance_bias=1,
                relative_phases=3, mesh_gravity=8, neighbours=2)
    torch.manual_seed(0)
    z = torch.randn(2, 30, 7)
    gamma, theta = torch.tensor([-4.0, 2.0]), torch.tensor([[0.3, 0.6], [0.7, 0.2]])
    alpha = torch.sqrt(torch.sigmoid(-gamma))[:, None, None]
    jumps = torch.zeros(2, 30, 7)
    jumps[..., :3] = torch.randint(-2, 3, (2, 30, 3)).float() / UNIFORM_STD
    moved = z + alpha * jumps
    for torus in (1, 0):
        net = ScoreNetwork(NetworkConfig(**opts, torus=torus)).eval()
        for p in net.parameters():  # zero-initialised output and new parts made non-zero
            torch.nn.init.normal_(p, 0.0, 0.2)
        with torch.no_grad():
            a, b = net(z, gamma, theta, (-10.0, 8.0)), net(moved, gamma, theta, (-10.0, 8.0))
        if torus:
            assert net.embed.in_features == 4 + 6 * 3
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        else:
            assert (a - b).abs().max() > 1e-2
    with pytest.raises(ValueError, match="torus needs fourier_features"):
        ScoreNetwork(NetworkConfig(fourier_features=0, torus=1))


def test_neighbour_features_against_a_direct_computation():
    """Each halo's k nearest neighbours under the minimum image (nearest first), their radial basis values of the
    separation in units of the mean separation N^(-1/3) and the unit direction times each, against a float64
    loop; the same with the distance bias's squared separations passed in; translation and permutation
    invariance; a clear error for k outside [1, N - 1]."""
    from lssviewer.model.neighbours import RBF_CENTRES, RBF_WIDTH, n_neighbour_features, neighbour_features

    g = torch.Generator().manual_seed(3)
    u = torch.rand(2, 30, 3, generator=g)
    # half of the halos in a clump 0.05 wide (separations s ~ 0.05-0.15 mean separations, where the basis
    # functions live), straddling the faces x = 0 and y = 0; the others spread over the box
    u[:, :15] = torch.remainder(0.05 * torch.rand(2, 15, 3, generator=g) - torch.tensor([0.025, 0.025, -0.4]), 1.0)
    u[0, 21] = torch.remainder(u[0, 20] + torch.tensor([0.995, 0.004, 0.0]), 1.0)  # a close pair across a face
    k = 3
    f = neighbour_features(u, k, periodic_sq_distances(u))
    assert f.shape == (2, 30, k, n_neighbour_features())
    x = u.double()
    for b in range(2):
        for i in range(30):
            d = x[b] - x[b, i]
            d -= torch.round(d)
            r = d.norm(dim=1)
            r[i] = float("inf")
            order = torch.argsort(r)[:k]
            s = r[order] * 30 ** (1 / 3)
            rbf = torch.exp(-0.5 * ((s[:, None] - RBF_CENTRES.double()) / RBF_WIDTH) ** 2)
            unit = d[order] / r[order, None]
            want = torch.cat([rbf, (unit[:, :, None] * rbf[:, None, :]).reshape(k, -1)], dim=1)
            torch.testing.assert_close(f[b, i].double(), want, rtol=1e-4, atol=1e-5)
    clumped = f[:, :15, :, :len(RBF_CENTRES)].amax(dim=-1)  # the clump's neighbours are inside the basis' reach
    assert (clumped > 0.1).float().mean() > 0.9
    # the close pair: each other's nearest neighbour, at 0.005 box lengths, in opposite directions
    assert f[0, 20, 0, :len(RBF_CENTRES)].sum() > 0.5
    torch.testing.assert_close(f[0, 20, 0, len(RBF_CENTRES):], -f[0, 21, 0, len(RBF_CENTRES):])
    shifted = torch.remainder(u + torch.tensor([0.37, 0.81, 0.05]), 1.0)
    torch.testing.assert_close(neighbour_features(shifted, k, periodic_sq_distances(shifted)), f, rtol=1e-4,
                               atol=1e-4)
    perm = torch.randperm(30, generator=g)
    torch.testing.assert_close(neighbour_features(u[:, perm], k, periodic_sq_distances(u[:, perm])), f[:, perm])
    for bad in (0, 30):
        with pytest.raises(ValueError, match="neighbours must be between 1 and N - 1 = 29"):
            neighbour_features(u, bad, periodic_sq_distances(u))
