"""Samplers of the VDM: ancestral (VDM eq. 30-33), deterministic DDIM (Song et al. 2021) and the
second-order multistep DPM-Solver++(2M) (Lu et al. 2022) for few-step sampling.

All walk a grid t_K = 1 > ... > t_0 = 0 of the learned schedule, uniform in t or in log SNR
(:func:`time_grid`). All random numbers come
from a CPU ``torch.Generator`` seeded by the caller, so the same seed gives the same catalogs on a
given device (and, up to floating-point rounding, across devices).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lssviewer.model.schedule import alpha_sigma
from lssviewer.model.vdm import VDM

SAMPLERS = ("ancestral", "ddim", "dpm2")
FINALS = ("denoise", "decoder_mean")
SPACINGS = ("time", "logsnr")


@torch.no_grad()
def time_grid(vdm: VDM, t_start: float, steps: int, spacing: str, device: torch.device | str) -> torch.Tensor:
    """The sampler's times t_K = t_start > ... > t_0 = 0, (steps + 1,).

    ``"time"``: uniform in t. ``"logsnr"``: uniform in gamma = -log SNR of the model's (learned, monotone)
    schedule, found by inverting gamma(t) on 4,097 points with linear interpolation (exact at the ends).
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown step spacing {spacing!r} (choose from {', '.join(SPACINGS)})")
    ts = torch.linspace(float(t_start), 0.0, steps + 1, device=device)
    if spacing == "time":
        return ts
    fine = torch.linspace(0.0, float(t_start), 4097, device=device)
    g = vdm.schedule(fine)[0].float()  # increasing in t
    targets = torch.linspace(float(g[-1]), float(g[0]), steps + 1, device=device)
    k = torch.searchsorted(g, targets).clamp(1, len(g) - 1)
    g0, g1 = g[k - 1], g[k]
    w = ((targets - g0) / (g1 - g0).clamp_min(1e-12)).clamp(0.0, 1.0)
    ts = fine[k - 1] + w * (fine[k] - fine[k - 1])
    ts[0], ts[-1] = float(t_start), 0.0
    return ts


def predict(vdm: VDM, z: torch.Tensor, gamma: torch.Tensor, theta_unit: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's noise and data estimates at one time, (eps_hat, x_hat = (z - sigma eps_hat) / alpha), each
    (B, N, 7), from the latent z (B, N, 7) at gamma (a scalar tensor) and theta_unit (B, 2)."""
    a, s = alpha_sigma(gamma)
    eps_hat = vdm.eps_hat(z, gamma.expand(len(z)), theta_unit).float()
    return eps_hat, (z - s * eps_hat) / a


class Cancelled(Exception):
    """Raised when a ``cancel()`` callback asks a sampling run or a likelihood scan to stop."""


@torch.inference_mode()
def sample(vdm: VDM, theta_unit: torch.Tensor, n_halos: int, steps: int, generator: torch.Generator,
           method: str = "ancestral",
           callback: Callable[[int, int, torch.Tensor], None] | None = None,
           cancel: Callable[[], bool] | None = None, t_start: float = 1.0,
           z_start: torch.Tensor | None = None, final: str = "decoder_mean", spacing: str = "time") -> torch.Tensor:
    """Draw standardised catalogs x (B, N, 7) at conditioning ``theta_unit`` (B, 2) in [0, 1]^2.

    Args:
        steps: number of denoising steps K (>= 1).
        method: ``"ancestral"`` (stochastic), ``"ddim"`` (deterministic after the first draw) or
            ``"dpm2"`` (DPM-Solver++(2M), deterministic, second order in the log-SNR step).
        callback: called after each step with (step, K, x_hat) where x_hat (B, N, 7) is the current
            denoised estimate (z_t - sigma_t eps_hat) / alpha_t in standardised units.
        cancel: polled before each step; True raises :class:`Cancelled`.
        t_start, z_start: start the reverse process at time ``t_start`` in (0, 1] from the latent
            ``z_start`` (B, N, 7) instead of at t = 1 from the prior N(0, I) (which needs no z_start). With
            z_start = alpha_t x + sigma_t eps of a data set x this denoises a partly noised catalog (as in
            SDEdit, Meng et al. 2022): which noise levels of the network make which structure.
        final: what is returned from the last latent z_0: ``"decoder_mean"``, z_0 / alpha_0 (the mean of the
            Gaussian decoder p(x | z_0), which keeps z_0's noise of sigma_0 / alpha_0 per standardised feature), or
            ``"denoise"``, one more network evaluation at t = 0 and its data estimate
            (z_0 - sigma_0 eps_hat) / alpha_0, the model's E[x | z_0] (as the last step of Song et al. 2021's
            samplers; one extra evaluation, no random numbers, so the same seed still gives the same catalog).
        spacing: the steps' grid, ``"time"`` (uniform in t) or ``"logsnr"`` (uniform in log SNR: :func:`time_grid`).
    """
    if final not in FINALS:
        raise ValueError(f"unknown final step {final!r} (choose from {', '.join(FINALS)})")
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r} (choose from {', '.join(SAMPLERS)})")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if not 0.0 < t_start <= 1.0:
        raise ValueError("t_start must be in (0, 1]")
    if z_start is None and t_start != 1.0:
        raise ValueError("a start before t = 1 needs z_start")
    device = theta_unit.device
    b = theta_unit.shape[0]
    shape = (b, n_halos, 7)
    if z_start is None:
        z = torch.randn(shape, generator=generator).to(device)
    else:
        if tuple(z_start.shape) != shape:
            raise ValueError(f"z_start has shape {tuple(z_start.shape)}, expected {shape}")
        z = z_start.to(device=device, dtype=torch.float32)
    ts = time_grid(vdm, t_start, steps, spacing, device)
    gammas, _ = vdm.schedule(ts)
    lambdas = -0.5 * gammas  # log(alpha / sigma)
    x_prev, h_prev = None, None
    for i in range(steps):
        if cancel is not None and cancel():
            raise Cancelled("sampling cancelled")
        g_t, g_s = gammas[i], gammas[i + 1]
        a_t, s_t = alpha_sigma(g_t)
        a_s, s_s = alpha_sigma(g_s)
        eps_hat, x_hat = predict(vdm, z, g_t, theta_unit)
        if method == "ancestral":
            c = -torch.expm1(g_s - g_t)  # 1 - SNR_t / SNR_s
            mean = (a_s / a_t) * (z - c * s_t * eps_hat)
            noise = torch.randn(shape, generator=generator).to(device)
            z = mean + torch.sqrt((s_s**2) * c) * noise
        elif method == "ddim":
            z = a_s * x_hat + s_s * eps_hat
        else:  # DPM-Solver++(2M) in the data-prediction form
            h = lambdas[i + 1] - lambdas[i]
            d = x_hat
            if x_prev is not None and i < steps - 1:
                r = h_prev / h
                d = (1.0 + 0.5 / r) * x_hat - (0.5 / r) * x_prev
            z = (s_s / s_t) * z - a_s * torch.expm1(-h) * d
            x_prev, h_prev = x_hat, h
        if callback is not None:
            callback(i + 1, steps, x_hat)
    if final == "decoder_mean":
        return z / alpha_sigma(gammas[-1])[0]  # the mean of the Gaussian decoder p(x | z_0)
    if cancel is not None and cancel():
        raise Cancelled("sampling cancelled")
    return predict(vdm, z, gammas[-1], theta_unit)[1]
