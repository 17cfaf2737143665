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
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lssviewer.model.network import NetworkConfig, ScoreNetwork
from lssviewer.model.schedule import NoiseSchedule, alpha_sigma


class VDM(nn.Module):
    """Score network + noise schedule, with the VDM loss terms.

    ``forward`` returns the per-catalog loss terms, so that the whole module can be wrapped in
    DistributedDataParallel.
    """

    def __init__(self, network: NetworkConfig, gamma_min: float = -10.0, gamma_max: float = 8.0,
                 schedule: str = "learned", learn_endpoints: bool = False):
        super().__init__()
        self.network = ScoreNetwork(network)
        self.schedule = NoiseSchedule(gamma_min, gamma_max, kind=schedule, learn_endpoints=learn_endpoints)

    @property
    def gamma_range(self) -> tuple[float, float]:
        return self.schedule.endpoints

    def eps_hat(self, z: torch.Tensor, gamma: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, N, 7) from z_t (B, N, 7), gamma_t (B,) and theta (B, 2) in [0, 1]^2."""
        return self.network(z, gamma, theta, self.gamma_range)

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
        err = (eps - self.eps_hat(z, gamma, theta)).float().pow(2).flatten(1).sum(-1)
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
