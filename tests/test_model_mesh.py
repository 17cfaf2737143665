"""Mesh gravity features (lssviewer.model.mesh) against linear theory and their symmetries."""

from __future__ import annotations

import math

import numpy as np
import torch

from lssviewer.model.mesh import DEFAULT_SCALES, mesh_features

MESH = 32


def _plane_wave(amplitude: float, n_x: int = 256, n_yz: int = 32) -> torch.Tensor:
    """Points whose number density is 1 + A cos(2 pi x) in the unit box: x at the quantiles of that density
    (inverse CDF), y and z on the mesh's cell centres (uniform), shape (1, n_x n_yz^2, 3)."""
    q = (np.arange(n_x) + 0.5) / n_x
    x = q.copy()
    for _ in range(50):  # Newton on F(x) = x + A sin(2 pi x) / (2 pi) = q
        x -= (x + amplitude * np.sin(2 * np.pi * x) / (2 * np.pi) - q) / (1 + amplitude * np.cos(2 * np.pi * x))
    yz = (np.arange(n_yz) + 0.5) / n_yz
    gx, gy, gz = np.meshgrid(x, yz, yz, indexing="ij")
    return torch.tensor(np.stack([gx, gy, gz], -1).reshape(1, -1, 3), dtype=torch.float32)


def test_plane_wave_acceleration_and_density_follow_linear_theory():
    """delta = A cos(k x), k = 2 pi: Poisson's equation (4 pi G rho_bar = 1) gives g_x = -A sin(k x) / k, and the
    features are these times the Gaussian smoothing exp(-k^2 R^2 / 2) and the cloud-in-cell windows of painting
    and reading (sinc(1/M)^2 each). Measured residuals: 0.3 % (g) and 0.55 % (density) of the amplitude, the
    linear interpolation of the cloud-in-cell read-back (1 - cos(pi / M) = 0.48 %; the same with 1,024 sheets
    per wavelength instead of 256, while 64 sheets alias on the mesh: 3.6 %), hence 1 %. The self-term of each
    point (removed only by the normalisation) is a constant offset: the density's residual must be constant to
    1 % of the amplitude."""
    amp = 0.5
    u = _plane_wave(amp)
    raw = mesh_features(u, MESH, normalise=False)[0].double().numpy()
    x = u[0, :, 0].double().numpy()
    k = 2 * math.pi
    w_cic = np.sinc(1.0 / MESH) ** 4
    for s, r in enumerate(DEFAULT_SCALES):
        w = math.exp(-0.5 * (k * r / MESH) ** 2) * w_cic
        gx, gy, gz, dens = raw[:, 4 * s: 4 * s + 4].T
        expected_g = -amp * np.sin(k * x) / k * w
        assert np.max(np.abs(gx - expected_g)) < 0.01 * amp / k * w
        assert np.max(np.abs(gy)) < 1e-3 * amp / k and np.max(np.abs(gz)) < 1e-3 * amp / k
        expected_d = amp * np.cos(k * x) * w
        assert np.ptp(dens - expected_d) < 0.01 * amp * w  # a constant self-term left


def test_uniform_points_give_unit_shot_noise_features():
    """For N uniform random points the normalised features have mean ~0 and rms ~1 (the analytic shot noise of
    the mesh estimator). 100 catalogs of 400: the sampling error of an rms is 2.9 % (1 sigma) at the largest
    smoothing (few independent modes per box), less at smaller ones; the density on 1 cell has a known bias,
    mean +0.05 and rms 1.07 (only the mean of a halo's own cloud is removed, and with the unaliased window), so
    8 % bounds all within ~2.7 sigma. Without the self-term removal that density feature has mean 3.1 and rms
    3.3; a normalisation off by sqrt(2) or a missing 1/N fails too."""
    torch.manual_seed(3)
    f = mesh_features(torch.rand(100, 400, 3), MESH)
    rms = f.pow(2).mean((0, 1)).sqrt()
    assert torch.all((rms - 1).abs() < 0.08), rms
    assert torch.all(f.mean((0, 1)).abs() < 0.08)


def test_features_are_periodic_translation_and_rotation_covariant():
    """Shifting all halos by whole cells (and whole boxes) leaves every feature as it was; permuting the axes
    permutes the acceleration components; permuting the halos permutes their features."""
    torch.manual_seed(4)
    u = torch.rand(2, 300, 3)
    u[:, :100] = 0.3 + 0.03 * torch.randn(2, 100, 3)  # a clump, so the fields are far from shot noise
    f = mesh_features(u, MESH)
    shift = torch.tensor([3.0, -5.0, 17.0]) / MESH + torch.tensor([1.0, 0.0, -2.0])
    torch.testing.assert_close(mesh_features(u + shift, MESH), f, rtol=1e-4, atol=1e-3)
    axes = [2, 0, 1]
    rotated = mesh_features(u[..., axes], MESH)
    for s in range(len(DEFAULT_SCALES)):
        torch.testing.assert_close(rotated[..., 4 * s: 4 * s + 3], f[..., 4 * s: 4 * s + 3][..., axes],
                                   rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(rotated[..., 4 * s + 3], f[..., 4 * s + 3], rtol=1e-4, atol=1e-3)
    perm = torch.randperm(300)
    torch.testing.assert_close(mesh_features(u[:, perm], MESH), f[:, perm], rtol=1e-4, atol=1e-4)
    # halos near the clump are pulled towards it, at the largest scale: g . (clump - u) > 0
    centre = torch.tensor([0.3, 0.3, 0.3])
    near = ((u[0] - centre).norm(dim=-1) > 0.05) & ((u[0] - centre).norm(dim=-1) < 0.3)
    assert near.sum() >= 20
    g = f[0, near, 8:11]
    assert ((g * (centre - u[0, near])).sum(-1) > 0).float().mean() > 0.9
