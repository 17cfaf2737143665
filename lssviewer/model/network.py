"""Set-transformer score network: predicts the noise eps from (z_t, gamma_t, theta).

Tokens are halos. Each token gets its noisy standardised features z_t (7) plus Fourier features
of its position (see :mod:`lssviewer.model.features`: the embedding sees the box as a torus). The
conditioning (cosmology theta and noise level gamma) is embedded once per catalog and modulates
every block through adaptive layer norm (shift, scale and a zero-initialised gate, as in DiT),
which is stronger than adding an embedding to the tokens (CM23) at the same cost.

Attention is torch's ``scaled_dot_product_attention`` over all N halos (O(N^2)); with
``induced_points = M > 0`` each block instead attends through M learned inducing points (ISAB of
Lee et al. 2019, O(N M)) for large N. The network is permutation equivariant, so the model's
density is exchangeable over halos.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lssviewer.model.features import N_FEATURES, POS, UNIFORM_STD, fourier_features
from lssviewer.model.mesh import mesh_features, n_mesh_features
from lssviewer.model.neighbours import n_neighbour_features, neighbour_features


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the score network (stored in checkpoints)."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    fourier_features: int = 3  # frequencies k = 1..K of the periodic position embedding (0: off)
    cond_dim: int = 128  # width of the conditioning embedding
    induced_points: int = 0  # > 0: induced-point attention with this many inducing points
    fourier_geometric: int = 0  # 1: Fourier frequencies 1, 2, 4, ... (small scales) instead of 1, 2, 3, ...
    distance_bias: int = 0  # 1: attention bias -w_h(t) d_ij^2 from periodic (minimum-image) separations
    # sinusoidal features of theta (in [0, 1] across the prior) reach 0.5 * theta_max_period rad per unit.
    # 100 (the first models): up to 50 rad, i.e. oscillations 0.05 wide in sigma_8, with which the network
    # can single out each of the suite's cosmologies; its ELBO profiles come out jagged (wiggles of 5-15
    # nats between neighbouring grid points) and their intervals far too narrow. 6: at most 3 rad, smooth.
    theta_max_period: int = 100
    # > 0: relative-phase messages with this many geometric frequencies k = 1, 2, ..., 2^(K-1): every head
    # also returns sum_j a_ij [cos, sin](2 pi k (u_j - u_i)) per axis (translation invariant, periodic), so a
    # halo sees the direction and concentration of its neighbours under its own attention kernel (pairwise
    # infall, close pairs). 0: off (models before v0.5).
    relative_phases: int = 0
    # > 0: mesh features with this many cells per side (lssviewer.model.mesh): at each halo the gravitational
    # acceleration and density contrast of the current positions smoothed on 1, 2 and 4 cells, fed to every
    # block through a small zero-initialised MLP conditioned on (t, theta) (linear-theory infall). 0: off.
    mesh_gravity: int = 0
    # 1: positions live on the torus (lssviewer.model.vdm, "Positions on the torus"): the network reads them only
    # through periodic functions (the Fourier features, distances, phases and mesh), not as raw coordinates, so
    # its output is periodic in every halo's position; the VDM then regresses the wrapped normal's noise. 0: the
    # raw standardised positions are inputs too (the models shipped before v0.9).
    torus: int = 0
    # > 0: each halo's this many nearest neighbours (lssviewer.model.neighbours: radial basis functions of the
    # separation, and the direction to the neighbour times each) feed every block through a small zero-initialised
    # MLP conditioned on (t, theta), summed over the neighbours: halo exclusion. 0: off (models up to v0.10).
    neighbours: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> NetworkConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown network option(s): {', '.join(sorted(unknown))}")
        return cls(**{k: int(v) for k, v in values.items()})


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding of a scalar per row, x (B,) in about [0, 1] -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=x.dtype, device=x.device) / half)
    ang = x[:, None] * freqs[None, :] * max_period * 0.5
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


def periodic_sq_distances(u: torch.Tensor) -> torch.Tensor:
    """Squared minimum-image separations (B, N, N) of box fractions u (B, N, 3) in a unit periodic box."""
    # one axis at a time: on CPU faster than a (B, N, N, 3) difference tensor summed over its last axis (the same
    # three squares added in the same order). u carries gradients in training (alpha_t of the learned schedule), so
    # only the in-place updates autograd saves nothing for: sub and round save no tensors, add none
    out = None
    for axis in range(u.shape[-1]):
        du = u[:, :, None, axis] - u[:, None, :, axis]
        du.sub_(torch.round(du))
        sq = du * du
        out = sq if out is None else out.add_(sq)
    return out


class Attention(nn.Module):
    """Multi-head attention of queries x (B, Nq, d) over context c (B, Nk, d)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model={d} is not divisible by n_heads={heads}")
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, bias: torch.Tensor | None = None,
                phases: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention output (B, Nq, d), and with ``phases`` (B, N, 2P: cos then sin of each context token's
        angles; self-attention only) the attention-weighted phases relative to each query, (B, Nq, heads * 2P)."""
        b, nq, d = x.shape
        h = self.heads
        q = self.q(x).view(b, nq, h, d // h).transpose(1, 2)
        k, v = self.kv(c).view(b, c.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        if phases is None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            return self.out(y.transpose(1, 2).reshape(b, nq, d)), None
        # the phases ride along as extra value columns: one softmax, one matmul. Queries and keys are padded
        # with zeros to the values' width (same logits, explicit scale): torch's fused CPU kernel needs equal
        # widths, and its fallback for unequal ones was 3x slower (8x for attention alone)
        pv = phases[:, None].expand(-1, h, -1, -1).to(v.dtype)
        pad = v.new_zeros(b, h, nq, pv.shape[-1])
        y = F.scaled_dot_product_attention(torch.cat([q, pad], dim=-1), torch.cat([k, pad], dim=-1),
                                           torch.cat([v, pv], dim=-1), attn_mask=bias, scale=1.0 / math.sqrt(d // h))
        y, ph = y[..., : d // h], y[..., d // h:].float()
        n_ang = phases.shape[-1] // 2
        cm, sm = ph[..., :n_ang], ph[..., n_ang:]  # sum_j a_ij cos(phi_j), sum_j a_ij sin(phi_j)
        ci, si = phases[:, None, :, :n_ang].float(), phases[:, None, :, n_ang:].float()
        # rotate by the query's own angle: sum_j a_ij cos(phi_j - phi_i), sum_j a_ij sin(phi_j - phi_i)
        rel = torch.cat([cm * ci + sm * si, sm * ci - cm * si], dim=-1)
        return self.out(y.transpose(1, 2).reshape(b, nq, d)), rel.transpose(1, 2).reshape(b, nq, -1)


class _Message(nn.Module):
    """A per-halo message from F features and the conditioning c (B, cond_dim): a hidden layer whose units are
    shifted by c; the output layer starts at zero, so a block with it starts as the block without (warm starts)."""

    def __init__(self, n_features: int, d: int, cond_dim: int, hidden: int = 64):
        super().__init__()
        self.inp = nn.Linear(n_features, hidden)
        self.cond = nn.Linear(cond_dim, hidden)
        self.out = nn.Linear(hidden, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)


class MeshMessage(_Message):
    """Per-halo message from its mesh features (B, N, F) and the conditioning (the velocity a given acceleration
    implies depends on the noise level and the cosmology)."""

    def __init__(self, d: int, cond_dim: int, hidden: int = 64):
        super().__init__(n_mesh_features(), d, cond_dim, hidden)

    def forward(self, feats: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(feats.to(self.inp.weight.dtype)) + self.cond(c)[:, None, :])
        return self.out(h)


class NeighbourMessage(_Message):
    """Per-halo message from its nearest neighbours' features (B, N, K, F) and the conditioning (how far apart two
    halos must be depends on the noise level and the cosmology): the hidden layer per neighbour, summed over
    them."""

    def __init__(self, d: int, cond_dim: int, hidden: int = 64):
        super().__init__(n_neighbour_features(), d, cond_dim, hidden)

    def forward(self, feats: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(feats.to(self.inp.weight.dtype)) + self.cond(c)[:, None, None, :])
        return self.out(h.sum(dim=2))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1.0 + scale[:, None, :]) + shift[:, None, :]


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-zero conditioning (and optional inducing points)."""

    def __init__(self, d: int, heads: int, mlp_ratio: int, cond_dim: int, induced_points: int,
                 distance_bias: int = 0, relative_phases: int = 0, mesh_gravity: int = 0, neighbours: int = 0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.attn = Attention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))
        self.ada = nn.Linear(cond_dim, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.distance_scale = None
        if distance_bias:
            self.distance_scale = nn.Linear(cond_dim, heads)
            nn.init.zeros_(self.distance_scale.weight)
            nn.init.zeros_(self.distance_scale.bias)
        self.rel_out = None
        if relative_phases:
            if induced_points > 0:
                raise ValueError("relative_phases needs full attention (induced_points = 0)")
            # zero-initialised: a block with it computes what it computed without it (warm starts)
            self.rel_out = nn.Linear(heads * 6 * relative_phases, d)
            nn.init.zeros_(self.rel_out.weight)
            nn.init.zeros_(self.rel_out.bias)
        self.mesh_out = MeshMessage(d, cond_dim) if mesh_gravity else None
        self.nbr_out = NeighbourMessage(d, cond_dim) if neighbours else None
        self.induced = None
        if induced_points > 0:
            self.induced = nn.Parameter(torch.randn(induced_points, d) / math.sqrt(d))
            self.attn_in = Attention(d, heads)
            self.norm_i = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, d2: torch.Tensor | None = None,
                phases: torch.Tensor | None = None, mesh: torch.Tensor | None = None,
                nbr: torch.Tensor | None = None) -> torch.Tensor:
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        h = _modulate(self.norm1(x), s1, sc1)
        if self.induced is None:
            bias = None
            if d2 is not None and self.distance_scale is not None:
                # per-head Gaussian kernel in periodic separation: bias = -exp(s_h(t, theta)) d_ij^2;
                # s starts at 0 (w = 1: negligible for d^2 << 1) and learns the scale per noise level
                w = torch.exp(self.distance_scale(c).clamp(max=14.0))  # (B, heads)
                # (d2 first: broadcasting the small factor into the large one is 50x faster on CPU)
                bias = (d2[:, None] * (-w)[:, :, None, None]).to(h.dtype)
            a, rel = self.attn(h, h, bias, phases if self.rel_out is not None else None)
            if rel is not None:
                a = a + self.rel_out(rel.to(a.dtype))
        else:  # ISAB: inducing points summarise the set, then the set attends to the summary
            ind = self.induced[None].expand(x.shape[0], -1, -1)
            summary = self.norm_i(ind + self.attn_in(ind, h)[0])
            a = self.attn(h, summary)[0]
        x = x + g1[:, None, :] * a
        if self.mesh_out is not None and mesh is not None:
            x = x + self.mesh_out(mesh, c).to(x.dtype)
        if self.nbr_out is not None and nbr is not None:
            x = x + self.nbr_out(nbr, c).to(x.dtype)
        x = x + g2[:, None, :] * self.mlp(_modulate(self.norm2(x), s2, sc2))
        return x


class ScoreNetwork(nn.Module):
    """eps_hat = net(z_t, gamma_t, theta).

    Args (forward):
        z: (B, N, 7) noisy standardised features.
        gamma: (B,) gamma_t = -log SNR.
        theta: (B, 2) cosmology mapped to [0, 1]^2 inside the prior box.
        gamma_range: (gamma_min, gamma_max), used to map gamma to [0, 1] for its embedding.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        if config.torus and not config.fourier_features:
            raise ValueError("torus needs fourier_features >= 1 (the network's only absolute view of the positions)")
        n_in = N_FEATURES - 3 * bool(config.torus) + 6 * config.fourier_features
        self.embed = nn.Linear(n_in, d)
        self.cond = nn.Sequential(nn.Linear(2 * 32 + 2, config.cond_dim), nn.SiLU(),
                                  nn.Linear(config.cond_dim, config.cond_dim), nn.SiLU())
        self.blocks = nn.ModuleList(
            Block(d, config.n_heads, config.mlp_ratio, config.cond_dim, config.induced_points,
                  config.distance_bias, config.relative_phases, config.mesh_gravity, config.neighbours)
            for _ in range(config.n_layers)
        )
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False)
        self.ada_out = nn.Linear(config.cond_dim, 2 * d)
        self.out = nn.Linear(d, N_FEATURES)
        for lin in (self.ada_out, self.out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def conditioning(self, gamma: torch.Tensor, theta: torch.Tensor,
                     gamma_range: tuple[float, float]) -> torch.Tensor:
        g = (gamma - gamma_range[0]) / (gamma_range[1] - gamma_range[0])
        period = float(self.config.theta_max_period)
        parts = [sinusoidal(g, 32), sinusoidal(theta[:, 0], 16, period), sinusoidal(theta[:, 1], 16, period),
                 theta]
        return self.cond(torch.cat(parts, dim=-1))

    def forward(self, z: torch.Tensor, gamma: torch.Tensor, theta: torch.Tensor,
                gamma_range: tuple[float, float]) -> torch.Tensor:
        inputs = [z[..., POS.stop:] if self.config.torus else z]
        # current estimate of the box fraction, z / alpha (de-shrunk)
        alpha = torch.sqrt(torch.sigmoid(-gamma))[:, None, None]
        u = 0.5 + UNIFORM_STD * z[..., POS] / alpha
        if self.config.fourier_features:  # its periodic embedding
            inputs.append(fourier_features(u, self.config.fourier_features, bool(self.config.fourier_geometric)))
        d2 = None
        if self.config.distance_bias:
            d2 = periodic_sq_distances(u)
        phases = None
        if self.config.relative_phases:  # (B, N, 6K): cos then sin of 2 pi k u, k = 1, 2, 4, ...
            k = 2.0 ** torch.arange(self.config.relative_phases, dtype=u.dtype, device=u.device)
            ang = (2.0 * math.pi * u[..., :, None] * k).flatten(-2)
            phases = torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)
        mesh = mesh_features(u, self.config.mesh_gravity) if self.config.mesh_gravity else None
        nbr = None
        if self.config.neighbours:
            nbr = neighbour_features(u, self.config.neighbours, d2 if d2 is not None else periodic_sq_distances(u))
        h = self.embed(torch.cat(inputs, dim=-1))
        c = self.conditioning(gamma, theta, gamma_range)
        for block in self.blocks:
            h = block(h, c, d2, phases, mesh, nbr)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        return self.out(_modulate(self.norm_out(h), shift, scale))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
