"""Noise schedules gamma(t) = -log SNR(t) of the continuous-time VDM (Kingma et al. 2021).

The forward process is z_t = alpha_t x + sigma_t eps with alpha_t^2 = sigmoid(-gamma(t)) and
sigma_t^2 = sigmoid(gamma(t)) (variance preserving), t in [0, 1], gamma increasing from
``gamma_min`` (almost clean data) to ``gamma_max`` (almost pure noise).

We write gamma(t) = gamma_0 + (gamma_1 - gamma_0) s(t) with s(0) = 0, s(1) = 1 and s monotone:

* ``linear``: s(t) = t;
* ``learned``: the monotone network of VDM (App. H): s~(t) = w1 t + sum_j w3_j sigmoid(w2_j t + b_j)
  with positive weights, normalised to [0, 1].

In continuous time the expected diffusion loss depends only on the end points gamma_0, gamma_1
(VDM eq. 18), so the *shape* s(t) is trained to minimise the variance of the loss estimator instead
(VDM section 5.2): :func:`variance_gradient` rescales the gradient that reaches the shape
parameters so that they follow d E[L^2] / d eta, while the end points (optionally learnable) follow
the ELBO gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ScaleGrad(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``holder.scale`` (per sample)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, holder: GradScaleHolder) -> torch.Tensor:  # type: ignore[override]
        ctx.holder = holder
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        scale = ctx.holder.scale
        if scale is None:
            return grad, None
        return grad * scale.to(grad.dtype).reshape(grad.shape), None


class GradScaleHolder:
    """Mutable holder: set ``scale`` (a per-sample tensor) after the forward pass, before backward."""

    def __init__(self) -> None:
        self.scale: torch.Tensor | None = None


class NoiseSchedule(nn.Module):
    """gamma(t) with monotone shape and fixed or learnable end points.

    Args:
        gamma_min: gamma(0) (log of the noise-to-signal ratio at t = 0; -10 means sigma_0 = 6.7e-3
            in standardised units).
        gamma_max: gamma(1) (+8: alpha_1^2 = 3.4e-4, the prior KL is negligible).
        kind: ``"linear"`` or ``"learned"``.
        learn_endpoints: train gamma_min and gamma_max on the ELBO (VDM); off by default because
            FoF masses are discrete (multiples of the particle mass) and an unbounded gamma_min would
            let the model chase that discreteness.
        hidden: width of the monotone network.
    """

    def __init__(self, gamma_min: float = -10.0, gamma_max: float = 8.0, kind: str = "learned",
                 learn_endpoints: bool = False, hidden: int = 64):
        super().__init__()
        if kind not in ("linear", "learned"):
            raise ValueError(f"unknown schedule kind {kind!r}")
        if not gamma_min < gamma_max:
            raise ValueError("gamma_min must be < gamma_max")
        self.kind = kind
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_min)), requires_grad=learn_endpoints)
        self.gamma_1 = nn.Parameter(torch.tensor(float(gamma_max)), requires_grad=learn_endpoints)
        if kind == "learned":
            # raw parameters; positive weights through softplus. Initialised close to linear.
            self.w1 = nn.Parameter(torch.tensor(2.0))
            self.w2 = nn.Parameter(torch.randn(hidden, generator=torch.Generator().manual_seed(0)) * 0.5 + 1.0)
            self.b2 = nn.Parameter(-torch.linspace(1.0, 12.0, hidden))
            self.w3 = nn.Parameter(torch.full((hidden,), -4.0))
        self.holder = GradScaleHolder()

    def _shape_raw(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised s~(t) and its derivative ds~/dt."""
        w1, w2, w3 = F.softplus(self.w1), F.softplus(self.w2), F.softplus(self.w3)
        a = t[..., None] * w2 * 10.0 + self.b2
        sig = torch.sigmoid(a)
        value = w1 * t + (w3 * sig).sum(-1)
        deriv = w1 + (w3 * w2 * 10.0 * sig * (1.0 - sig)).sum(-1)
        return value, deriv

    def shape(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """s(t) in [0, 1] and ds/dt (> 0)."""
        if self.kind == "linear":
            return t, torch.ones_like(t)
        value, deriv = self._shape_raw(t)
        ends = torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device)
        v_ends, _ = self._shape_raw(ends)
        span = v_ends[1] - v_ends[0]
        return (value - v_ends[0]) / span, deriv / span

    def forward(self, t: torch.Tensor, variance_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """gamma(t) and dgamma/dt for times t (any shape) in [0, 1].

        With ``variance_grad`` the shape parameters receive the gradient of the squared loss (set
        ``self.holder.scale = 2 * loss_per_sample`` before calling backward).
        """
        s, ds = self.shape(t)
        if variance_grad and self.kind == "learned":
            s = _ScaleGrad.apply(s, self.holder)
            ds = _ScaleGrad.apply(ds, self.holder)
        g0, g1 = self.gamma_0, self.gamma_1
        return g0 + (g1 - g0) * s, (g1 - g0) * ds

    @property
    def endpoints(self) -> tuple[float, float]:
        return float(self.gamma_0), float(self.gamma_1)


def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha = sqrt(sigmoid(-gamma)), sigma = sqrt(sigmoid(gamma)) (variance preserving)."""
    return torch.sqrt(torch.sigmoid(-gamma)), torch.sqrt(torch.sigmoid(gamma))
