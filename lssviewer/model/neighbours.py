"""Nearest-neighbour features of the current position estimates: what a halo needs to keep its distance.

The simulations' halo finder never puts two halos closer than about the sum of their radii (1.8-2.7 Mpc/h for the
built-in suite's halos: halos that would overlap are one halo), and samples of networks without this feature put
up to 80 times too many pairs inside 3 Mpc/h (docs/model.md, "Where the small-scale excess comes from"). The
network's other views of the neighbourhood are smooth or coarse (a Gaussian attention bias in the separation,
relative phases down to L / 2^(K-1)); here each halo gets, for each of its K nearest neighbours j (minimum image,
periodic box), radial basis functions of the separation r_ij and the unit direction to j times each of them:

    f_ijm = [exp(-(s_ij - c_m)^2 / (2 w^2)),  e_ij exp(-(s_ij - c_m)^2 / (2 w^2))],   s_ij = r_ij N^(1/3)

with s the separation in units of the mean halo separation L / N^(1/3) (54 Mpc/h for the built-in 400 halos in
400 Mpc/h: the exclusion scale is s ~ 0.05), M = 10 centres c_m from 0 to 0.2 (0-11 Mpc/h there), width w = their
spacing. A displacement ``e_ij g(r_ij)`` that pushes a too-close pair apart is linear in these features. They are
computed without gradients (like the mesh features: they depend on the input only).
"""

from __future__ import annotations

import torch

#: Radial basis centres, in units of the mean halo separation, and their width (their spacing).
RBF_CENTRES = torch.linspace(0.0, 0.2, 10)
RBF_WIDTH = float(RBF_CENTRES[1] - RBF_CENTRES[0])


def n_neighbour_features() -> int:
    """Features per neighbour: M radial basis values and 3 M direction components."""
    return 4 * len(RBF_CENTRES)


@torch.no_grad()
def neighbour_features(u: torch.Tensor, k: int, d2: torch.Tensor) -> torch.Tensor:
    """Features (B, N, k, 4M) of each halo's k nearest neighbours (nearest first), float32.

    Args:
        u: (B, N, 3) positions as fractions of a unit periodic box.
        k: neighbours per halo (1 <= k < N).
        d2: the squared minimum-image separations (B, N, N) of u (``network.periodic_sq_distances``, which the
            distance bias also uses).
    """
    b, n, _ = u.shape
    if not 1 <= k < n:
        raise ValueError(f"neighbours must be between 1 and N - 1 = {n - 1}, got {k}")
    u = u.detach().float()
    d2 = d2.detach().float().clone()
    d2.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    sq, idx = torch.topk(d2, k, dim=-1, largest=False)  # (B, N, k), ascending
    uj = torch.gather(u[:, None, :, :].expand(b, n, n, 3), 2, idx[..., None].expand(b, n, k, 3))
    disp = uj - u[:, :, None, :]
    disp = disp - torch.round(disp)
    r = sq.clamp_min(0.0).sqrt()
    s = r * n ** (1.0 / 3.0)
    centres = RBF_CENTRES.to(u.device)
    rbf = torch.exp(-0.5 * ((s[..., None] - centres) / RBF_WIDTH).square())  # (B, N, k, M)
    unit = disp / r.clamp_min(1e-12)[..., None]
    directed = (unit[..., :, None] * rbf[..., None, :]).flatten(-2)  # (B, N, k, 3M)
    return torch.cat([rbf, directed], dim=-1)
