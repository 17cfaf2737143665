"""Continuous-time Variational Diffusion Model (Kingma, Salimans, Poole & Ho 2021).

Notation (all in standardised feature units, D = N_halos x 7 dimensions per catalog):

* forward process q(z_t | x) = N(alpha_t x, sigma_t^2 I), gamma(t) = -log(alpha_t^2 / sigma_t^2);
* decoder p(x | z_0) = N(x; z_0 / alpha_0, sigma_0^2 / alpha_0^2 I) (a Gaussian decoder whose
  width e^{gamma_0 / 2} matches the forward noise at t = 0);
* prior p(z_1) = N(0, I).

The negative ELBO of a catalog, in nats, is the sum of three named terms (VDM eq. 11, 17):

* ``reconstruction`` = E_q[-log p(x | z_0)] = D/2 (1 + log 2 pi + gamma_0)   (analytic expectation);
* ``prior``          = KL(q(z_1 | x) || N(0, I)) = 1/2 sum(sigma_1^2 + alpha_1^2 x^2 - log sigma_1^2 - 1);
* ``diffusion``      = 1/2 E_{t ~ U(0,1), eps} [gamma'(t) ||eps - eps_hat(z_t, gamma_t, theta)||^2].

Only the diffusion term depends on the cosmology theta.

Positions on the torus (``NetworkConfig.torus = 1``). The box is periodic, Gaussian noise in R^3 is not. Written
in variance-exploding form, y_t = z_t / alpha_t = x + e^{gamma_t / 2} eps, the position part of the forward
process is Brownian motion; seen modulo the period P = 1 / UNIFORM_STD of the standardised positions it is
Brownian motion on the torus, whose marginal q(y_t | x) is the wrapped normal and whose end point (e^{gamma_1 / 2}
>> P) is uniform on the torus. The reverse process needs only the score of that marginal, a periodic function of
y_t: a network that sees positions only through periodic functions (``ScoreNetwork``) regressing the wrapped
normal's noise

    eps_w = -e^{gamma_t / 2} d/dy log sum_k N(y_t; x + k P, e^{gamma_t}) = sum_k w_k (y_t - x - k P) / e^{gamma_t / 2}

(w_k the posterior weights of the images; eps_w = eps while the noise is well below P) learns it. The ELBO of the
torus process has the same form, 1/2 E[gamma'(t) ||eps_w - eps_hat||^2] for the position dimensions (the
continuous-time KL of two diffusions on the flat torus; VE and VP forms are the same process in other
coordinates), the prior term is the KL of the wrapped normal at t = 1 from the uniform density (~0) and the
reconstruction term is unchanged (the decoder's width is far below P). Samplers need no change: their state may
wander outside the box (the network reads it periodically) and the final positions are wrapped into it. One
thing is imposed rather than learned: above a noise of one period the wrapped normal is uniform, eps_w is 0 and
the reverse process must not move positions, but in variance-exploding form a small eps_hat there is a large
pull (x_hat = y_t - e^{gamma / 2} eps_hat); so the network's position output is tapered to 0 between P / 2 and P
(:func:`position_taper`), in training, likelihood and sampling alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lssviewer.model.features import POS, UNIFORM_STD
from lssviewer.model.network import NetworkConfig, ScoreNetwork
from lssviewer.model.schedule import NoiseSchedule, alpha_sigma

#: The period of the standardised positions (a whole box side).
POSITION_PERIOD = 1.0 / UNIFORM_STD


def wrapped_noise(eps: torch.Tensor, gamma: torch.Tensor, period: float = POSITION_PERIOD) -> torch.Tensor:
    """The wrapped normal's noise eps_w (module docstring) of displacements e^{gamma / 2} eps on a circle of
    ``period``: eps (B, ...) standard normal, gamma (B,). Below a noise of period / 3 it sums the images k = -2..2
    of the nearest one (the next are > 2.5 periods away: weights < e^-28); above, the Fourier series of the wrapped
    normal with n = 1..6 (rho_6 < e^-78). Exact to float rounding at both ends: eps_w = eps for small noise, 0
    once the wrapped normal is uniform."""
    sigma = torch.exp(0.5 * gamma.to(eps.dtype)).reshape(-1, *([1] * (eps.ndim - 1)))
    d = sigma * eps
    d0 = d - period * torch.round(d / period)  # the nearest image, in [-P/2, P/2]
    # each form evaluated where it is well conditioned (torch.where would pass a NaN gradient of the other)
    switch = period / 3.0
    s_img, s_four = sigma.clamp(max=switch), sigma.clamp(min=switch)
    k = torch.arange(-2, 3, dtype=eps.dtype, device=eps.device)
    shifted = d0[..., None] - k * period  # (..., 5)
    w = torch.softmax(-0.5 * (shifted / s_img[..., None]) ** 2, dim=-1)
    from_images = (w * shifted).sum(-1) / s_img
    n = torch.arange(1, 7, dtype=eps.dtype, device=eps.device)
    rho = torch.exp(-2.0 * math.pi**2 * n**2 * (s_four[..., None] / period) ** 2)  # q P = 1 + 2 sum rho cos
    ang = 2.0 * math.pi * n * d0[..., None] / period
    dq = (2.0 * rho * (2.0 * math.pi * n / period) * torch.sin(ang)).sum(-1)  # -d/dy of q P
    q = 1.0 + (2.0 * rho * torch.cos(ang)).sum(-1)  # >= 1 - 2 sum rho > 0.77 here
    from_fourier = s_four * dq / q
    return torch.where(sigma < switch, from_images, from_fourier)


def position_taper(gamma: torch.Tensor, period: float = POSITION_PERIOD) -> torch.Tensor:
    """(B,) factor of a torus network's position output: 1 for a noise e^{gamma / 2} <= period / 2, a cosine
    taper to 0 at one period and 0 above. The exact eps_w is < 0.045 at P / 2 and < 4e-8 from P on (the wrapped
    normal is uniform), where the reverse process must leave positions alone: DPM-Solver moves them towards
    x_hat = y_t - e^{gamma / 2} eps_hat, so an eps_hat error of 0.01 at gamma_1 (noise 55) is a pull of 0.55
    standardised units, a sixth of the box (a warm-started candidate's samples collapsed into slabs that way)."""
    x = ((torch.exp(0.5 * gamma) - 0.5 * period) / (0.5 * period)).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * x))


#: The smallest gamma_1 of a torus model: a noise of half the period at t = 1 (:func:`wrapped_normal_kl_uniform`).
TORUS_GAMMA_MIN_END = 2.0 * math.log(POSITION_PERIOD / 2.0)


def wrapped_normal_kl_uniform(gamma: torch.Tensor, period: float = POSITION_PERIOD) -> torch.Tensor:
    """KL(wrapped normal of variance e^gamma || uniform) on a circle of ``period``, nats: sum_n rho_n^2 (second
    order in rho_n = exp(-2 pi^2 n^2 sigma^2 / P^2); the next order is ~rho_1^3). Valid for sigma >= P / 2 (rho_1
    <= 0.0072: error < 4e-7 nats per dimension), which :class:`VDM` checks once (tensor-only here: no device
    sync in the loss)."""
    sigma = torch.exp(0.5 * gamma)
    n = torch.arange(1, 4, dtype=gamma.dtype, device=gamma.device)
    return torch.exp(-4.0 * math.pi**2 * n**2 * (sigma / period) ** 2).sum()


class VDM(nn.Module):
    """Score network + noise schedule, with the VDM loss terms.

    ``forward`` returns the per-catalog loss terms, so that the whole module can be wrapped in
    DistributedDataParallel.
    """

    def __init__(self, network: NetworkConfig, gamma_min: float = -10.0, gamma_max: float = 8.0,
                 schedule: str = "learned", learn_endpoints: bool = False):
        super().__init__()
        if network.torus and gamma_max < TORUS_GAMMA_MIN_END:
            raise ValueError(f"torus positions need a noise of at least half the box at t = 1: gamma_max >= "
                             f"{TORUS_GAMMA_MIN_END:.2f}, got {gamma_max:g}")
        self.network = ScoreNetwork(network)
        self.schedule = NoiseSchedule(gamma_min, gamma_max, kind=schedule, learn_endpoints=learn_endpoints)
        #: whether positions diffuse on the torus (module docstring)
        self.torus = bool(network.torus)

    @property
    def gamma_range(self) -> tuple[float, float]:
        return self.schedule.endpoints

    def target_noise(self, eps: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """What eps_hat regresses for noise eps (B, N, 7) at gamma (B,): eps itself, with the positions' wrapped
        normal noise (:func:`wrapped_noise`) on the torus."""
        if not self.torus:
            return eps
        return torch.cat([wrapped_noise(eps[..., POS], gamma), eps[..., POS.stop:]], dim=-1)

    def eps_hat(self, z: torch.Tensor, gamma: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, N, 7) from z_t (B, N, 7), gamma_t (B,) and theta (B, 2) in [0, 1]^2; on the torus
        the position part is tapered to 0 where the wrapped normal is uniform (:func:`position_taper`)."""
        out = self.network(z, gamma, theta, self.gamma_range)
        if not self.torus:
            return out
        taper = position_taper(gamma.float()).to(out.dtype)[:, None, None]
        return torch.cat([out[..., POS] * taper, out[..., POS.stop:]], dim=-1)

    # ------------------------------------------------------------------------------------- loss terms
    def reconstruction_loss(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[-log p(x | z_0)] per catalog (B,), nats."""
        g0 = self.schedule.gamma_0
        d = x[0].numel()
        return (0.5 * d * (1.0 + math.log(2.0 * math.pi) + g0)).expand(x.shape[0])

    def prior_loss(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z_1 | x) || N(0, I)) per catalog (B,), nats."""
        g1 = self.schedule.gamma_1
        var1 = torch.sigmoid(g1)
        log_var1 = F.logsigmoid(g1)
        alpha1_sq = torch.sigmoid(-g1)
        kl = 0.5 * (var1 + alpha1_sq * x.pow(2) - log_var1 - 1.0)
        if self.torus:  # the positions end uniform on the torus, not standard normal
            n_pos = x.shape[1] * (POS.stop - POS.start)
            return kl[..., POS.stop:].flatten(1).sum(-1) + n_pos * wrapped_normal_kl_uniform(g1)
        return kl.flatten(1).sum(-1)

    def diffusion_loss(self, x: torch.Tensor, theta: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                       variance_grad: bool = False) -> torch.Tensor:
        """One-sample Monte Carlo estimate of the continuous-time diffusion loss per catalog (B,), nats.

        Args:
            x: (B, N, 7) standardised clean features.
            theta: (B, 2) cosmology in [0, 1]^2.
            t: (B,) times in [0, 1].
            eps: (B, N, 7) standard normal noise.
        """
        gamma, dgamma = self.schedule(t, variance_grad=variance_grad)
        alpha, sigma = alpha_sigma(gamma)
        z = alpha[:, None, None] * x + sigma[:, None, None] * eps
        err = (self.target_noise(eps, gamma) - self.eps_hat(z, gamma, theta)).float().pow(2).flatten(1).sum(-1)
        return 0.5 * dgamma * err

    def forward(self, x: torch.Tensor, theta: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                variance_grad: bool = False) -> dict[str, torch.Tensor]:
        """The three terms of the negative ELBO per catalog, in nats: reconstruction, prior, diffusion."""
        return {
            "reconstruction": self.reconstruction_loss(x),
            "prior": self.prior_loss(x),
            "diffusion": self.diffusion_loss(x, theta, t, eps, variance_grad=variance_grad),
        }


def low_discrepancy_times(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stratified times for a batch: t_i = (u + i / B) mod 1 with one shared uniform u (VDM)."""
    u = torch.rand((), generator=generator, dtype=torch.float64)
    return torch.remainder(u + torch.arange(batch, dtype=torch.float64) / batch, 1.0).float()
