"""Mesh features of the current (noisy) halo positions: smoothed density and gravitational acceleration.

In linear theory a halo's peculiar velocity is proportional to the gravitational acceleration of the smoothed
density field around it (v = f a H g / (4 pi G rho_bar)), which is what makes pairs fall towards each other on
10-30 Mpc/h. The attention sees neighbours through dot products of Fourier features of single positions, so it
has to assemble that long-range 1/r^2 sum itself; here it is computed directly, as a particle-mesh code would:

* the halos of each catalog are painted (cloud in cell) on a periodic mesh of M^3 cells as the number density
  contrast delta(x) = n(x) / n_bar - 1;
* for each Gaussian smoothing scale R (in cells), FFT: delta_R(k) = delta(k) W_R(k) and the acceleration
  g_R(k) = i k delta_R(k) / k^2 (units with 4 pi G rho_bar = 1, positions in box units: g points towards
  overdensities), with the Nyquist component of the gradient set to zero;
* both are read back at the halos with the same cloud-in-cell kernel; the density read at a halo loses the mean
  contribution of its own cloud (sum over k != 0 of W_R(k) W_cic(k)^2 / N), and both are divided by their rms
  for N uniform random points (Poisson shot noise: sum over k != 0 of |K(k)|^2 W_cic(k)^4 / N), so a catalog
  with no structure has features of mean ~0 and rms ~1 at every scale, and clustering shows as larger values.
  (Both use the unaliased window and the mean self-term: for N = 400 on 32^3 cells the density on 1 cell keeps
  mean +0.05 and rms 1.07 for uniform points, with a sub-cell pattern from the halo's own cloud; the other
  features are within 0.5 %.)

The scales and the normalisation define what a trained model with ``mesh_gravity`` computes: they are part of the
checkpoint format (not stored per model), so changing them needs a new network option.

Per halo and scale: (g_x, g_y, g_z, delta_R), 4 numbers. The features are a function of the positions alone
(no weights), computed in float32 without gradients. They are translation covariant (periodic) and rotate with
the cube symmetries used in training, like the velocities they are meant to predict.
"""

from __future__ import annotations

import contextlib
import math

import torch

#: Gaussian smoothing radii in mesh cells (with M = 32 in a 400 Mpc/h box: 12.5, 25 and 50 Mpc/h)
DEFAULT_SCALES = (1.0, 2.0, 4.0)


def n_mesh_features(n_scales: int = len(DEFAULT_SCALES)) -> int:
    """Features per halo: three acceleration components and the density contrast per scale."""
    return 4 * n_scales


def _cic(u: torch.Tensor, mesh: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat cell indices (B, N, 8) and weights (B, N, 8) of the 8 cloud-in-cell neighbours of box fractions u."""
    g = torch.remainder(u, 1.0) * mesh - 0.5  # cell centres at (i + 0.5) / M
    i0 = torch.floor(g)
    f = g - i0
    i0 = i0.long()
    idx, wts = [], []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                ix = torch.remainder(i0[..., 0] + dx, mesh)
                iy = torch.remainder(i0[..., 1] + dy, mesh)
                iz = torch.remainder(i0[..., 2] + dz, mesh)
                idx.append((ix * mesh + iy) * mesh + iz)
                w = ((f[..., 0] if dx else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1])
                     * (f[..., 2] if dz else 1 - f[..., 2]))
                wts.append(w)
    return torch.stack(idx, -1), torch.stack(wts, -1)


def _kernels(mesh: int, scales: tuple[float, ...], n_points: int, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Complex Fourier kernels (S, 4, M, M, M//2+1) of (g_x, g_y, g_z, delta) per scale, their shot-noise rms (S, 4) and
    the mean self-contribution to be removed (S, 4; non-zero for delta only)."""
    n = torch.fft.fftfreq(mesh, d=1.0 / mesh, device=device)  # integer wavenumbers
    nz = torch.fft.rfftfreq(mesh, d=1.0 / mesh, device=device)
    kx, ky, kz = torch.meshgrid(2 * math.pi * n, 2 * math.pi * n, 2 * math.pi * nz, indexing="ij")
    k2 = kx * kx + ky * ky + kz * kz
    inv_k2 = torch.where(k2 > 0, 1.0 / k2.clamp(min=1e-12), torch.zeros_like(k2))
    nyq = mesh // 2 if mesh % 2 == 0 else None

    def odd(k: torch.Tensor, nn: torch.Tensor) -> torch.Tensor:  # gradient: no Nyquist component
        return k if nyq is None else torch.where(nn.abs() == nyq, torch.zeros_like(k), k)

    nxg, nyg, nzg = torch.meshgrid(n, n, nz, indexing="ij")
    grads = [odd(kx, nxg), odd(ky, nyg), odd(kz, nzg)]

    w_cic = (torch.sinc(nxg / mesh) * torch.sinc(nyg / mesh) * torch.sinc(nzg / mesh)) ** 2
    # rfft half-space: modes with 0 < kz < Nyquist stand for two modes of the full FFT
    mult = torch.full_like(nzg, 2.0)
    mult[..., 0] = 1.0
    if mesh % 2 == 0:
        mult[..., -1] = 1.0
    kernels, rms, offset = [], [], []
    zero = torch.zeros((), device=device)
    for r in scales:
        w = torch.exp(-0.5 * k2 * (r / mesh) ** 2)  # Gaussian of radius r cells
        per_scale = [g * inv_k2 * w for g in grads] + [w * (k2 > 0)]  # |K|
        # complex kernels: g = i k delta / k^2, delta_R = W delta
        kernels.append(torch.stack([1j * kk for kk in per_scale[:3]] + [per_scale[3].to(torch.complex64)]))
        rms.append(torch.stack([torch.sqrt((mult * (kk * w_cic ** 2) ** 2).sum() / n_points) for kk in per_scale]))
        # a halo's own cloud adds to the density read at its position: on average sum_k W W_cic^2 / N
        offset.append(torch.stack([zero, zero, zero, (mult * per_scale[3] * w_cic ** 2).sum() / n_points]))
    return torch.stack(kernels), torch.stack(rms), torch.stack(offset)


_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def mesh_features(u: torch.Tensor, mesh: int, scales: tuple[float, ...] = DEFAULT_SCALES,
                  normalise: bool = True) -> torch.Tensor:
    """Acceleration and density contrast at each halo, (B, N, 4 S), from box fractions u (B, N, 3).

    Args:
        u: positions as box fractions (any real values: the box is periodic).
        mesh: cells per side M.
        scales: Gaussian smoothing radii in cells.
        normalise: divide by the shot-noise rms and remove the mean self-density (False: the raw fields, in
            units of 4 pi G rho_bar = 1 and box lengths; for tests).
    """
    no_autocast = (torch.autocast(device_type=u.device.type, enabled=False) if u.device.type in ("cpu", "cuda")
                   else contextlib.nullcontext())
    with torch.no_grad(), no_autocast:
        u = u.float()
        b, n, _ = u.shape
        key = (mesh, tuple(scales), n, str(u.device))
        entry = _CACHE.get(key)
        if entry is None:
            if len(_CACHE) > 8:
                _CACHE.clear()
            entry = _CACHE[key] = _kernels(mesh, tuple(scales), n, u.device)
        kern, rms, offset = entry
        idx, wts = _cic(u, mesh)
        counts = torch.zeros(b, mesh ** 3, device=u.device)
        counts.scatter_add_(1, idx.reshape(b, -1), wts.reshape(b, -1))
        delta = counts * (mesh ** 3 / n) - 1.0
        dk = torch.fft.rfftn(delta.view(b, mesh, mesh, mesh), dim=(1, 2, 3))  # (B, M, M, M//2+1)
        s = len(scales)
        fk = dk[:, None, None] * kern[None]  # (B, S, 4, ...)
        fields = torch.fft.irfftn(fk, s=(mesh, mesh, mesh), dim=(3, 4, 5)).reshape(b, s * 4, -1)
        at = torch.gather(fields, 2, idx.reshape(b, 1, -1).expand(-1, s * 4, -1)).view(b, s * 4, n, 8)
        vals = (at * wts[:, None]).sum(-1)  # (B, 4S, N)
        if normalise:
            vals = (vals - offset.reshape(1, -1, 1)) / rms.reshape(1, -1, 1)
        return vals.transpose(1, 2).contiguous()
