"""Where a model's small-scale clustering comes from: the real-space 2PCF at 0.5-20 Mpc/h of simulations,
of model samples, and of simulations noised to an intermediate time and denoised by the model (SDEdit).

    python benchmarks/bench_small_scales.py [--model DIR] [--fresh training/default/fresh.h5] [--n 16]

For a time t* with position noise s = (sigma_t / alpha_t) L / sqrt(12) Mpc/h per axis, simulations at the
model's cosmology are noised to z_t* = alpha x + sigma eps and denoised from t* to 0 (ancestral sampler, the
same number of steps per unit time as a full run): structure the network imposes below the scale s shows as
a difference from the simulations' xi there. The decoder's own resolution (s at t = 0) is printed, and the
simulations blurred by the decoder's Gaussian (what the ELBO at best describes) are a row of the table.

Velocities are in units of each box's velocity rms (the model's standardisation), so the mean radial pairwise
velocity v12 of all rows is comparable. Prints tables of xi (pooled pair counts, Poisson errors) and v12 per bin
and writes
benchmarks/results/bench_small_scales.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model.api import load_model  # noqa: E402
from lssviewer.model.features import UNIFORM_STD, raw_to_physical  # noqa: E402
from lssviewer.model.sampler import predict, sample  # noqa: E402
from lssviewer.model.schedule import alpha_sigma  # noqa: E402
from lssviewer.stats.pairs import analytic_rr, pair_counts  # noqa: E402
from lssviewer.stats.velocity import pairwise_velocity  # noqa: E402

EDGES = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0, 20.0])
V12_EDGES = np.array([2.0, 4.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0])


def pooled_xi(positions: list[np.ndarray], box: float, edges: np.ndarray = EDGES) -> tuple[np.ndarray, np.ndarray]:
    """xi = sum DD / sum RR - 1 over catalogs (natural estimator, analytic randoms) and its Poisson error
    (1 + xi) / sqrt(unordered pairs)."""
    dd = sum(pair_counts(p, box, edges) for p in positions)
    rr = sum(analytic_rr(len(p), box, edges) for p in positions)
    xi = dd / rr - 1.0
    return xi, (1.0 + xi) / np.sqrt(np.maximum(dd / 2.0, 1.0))


def pooled_v12(positions: list[np.ndarray], velocities: list[np.ndarray], box: float,
               edges: np.ndarray = V12_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Mean radial pairwise velocity over the pairs of all catalogs and its standard error (velocity units)."""
    parts = [pairwise_velocity(p, v, box, edges) for p, v in zip(positions, velocities, strict=True)]
    n = sum(np.nan_to_num(c) for _, _, c in parts)
    mean = sum(np.nan_to_num(m) * c for m, _, c in parts) / n
    err = np.sqrt(sum((np.nan_to_num(e) * c) ** 2 for _, e, c in parts)) / n
    return mean, err


def split_standardised(model, x: torch.Tensor) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Positions [Mpc/h, in [0, L)] and velocities [units of each box's velocity rms] of standardised
    catalogs (B, N, 7) of a box-standardised model, after the projection onto exact box statistics that
    ``DiffusionModel.sample`` applies too (the network's own output has velocity rms ~0.9-1.0 of the target)."""
    arr = model.transform.project(x.detach().double().numpy(), standardised=True)
    raw = np.concatenate([arr[..., :3] * UNIFORM_STD + 0.5, arr[..., 3:]], axis=-1)  # positions as box fractions
    return list(raw_to_physical(raw, model.box_size)[..., :3]), list(arr[..., 3:6] / model.transform.velocity_scale)


@torch.inference_mode()
def final_denoise(vdm, x0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """The network's data estimate (z_0 - sigma_0 eps_hat) / alpha_0 from a decoder mean x0 = z_0 / alpha_0 (what
    the sampler's ``final="denoise"`` returns)."""
    g0 = vdm.schedule(torch.zeros(1, device=x0.device))[0][0]
    return predict(vdm, alpha_sigma(g0)[0] * x0, g0, theta)[1]


def time_for_noise(model, scale: float) -> float:
    """The time t at which the position noise sigma_t / alpha_t L / sqrt(12) equals ``scale`` Mpc/h."""
    target = 2.0 * math.log(scale / (UNIFORM_STD * model.box_size))  # gamma = log(sigma^2 / alpha^2)
    lo, hi = 0.0, 1.0
    with torch.no_grad():
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            gamma = float(model.vdm.schedule(torch.tensor([mid]))[0][0])
            lo, hi = (mid, hi) if gamma < target else (lo, mid)
    return 0.5 * (lo + hi)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE.parent / "resources/models/default"))
    ap.add_argument("--fresh", default=str(HERE.parent / "training/default/fresh.h5"))
    ap.add_argument("--cosmology", type=int, nargs="+", default=[2],
                    help="which cosmologies of --fresh (indices, sorted by Omega_m); pairs are pooled over them")
    ap.add_argument("--n", type=int, default=16, help="simulations (and samples)")
    ap.add_argument("--scales", type=float, nargs="+", default=[4.0, 8.0, 16.0, 32.0],
                    help="position noise (Mpc/h per axis) to denoise from")
    ap.add_argument("--steps", type=int, default=100, help="ancestral steps of a full (t = 1) run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default=str(HERE / "results" / "bench_small_scales.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model(args.model, device="cpu")
    sims_all = hdf5.read(args.fresh)
    thetas = sorted({(round(c.cosmology.omega_m, 6), round(c.cosmology.sigma_8, 6)) for c in sims_all})
    chosen = [thetas[i] for i in args.cosmology]
    sims = [c for om, s8 in chosen for c in [c for c in sims_all if np.isclose(c.cosmology.omega_m, om)
                                              and np.isclose(c.cosmology.sigma_8, s8)][: args.n]]
    box = model.box_size
    if not model.transform.per_box:
        raise SystemExit("bench_small_scales needs a box-standardised model (velocities in units of the box rms)")
    theta = model._theta_unit(np.array([[c.cosmology.omega_m, c.cosmology.sigma_8] for c in sims]))
    x = torch.stack([model._standardised(c, t[None].numpy()).reshape(-1, 7) for c, t in zip(sims, theta, strict=True)])
    gamma_0 = model.vdm.gamma_range[0]
    resolution = math.exp(0.5 * gamma_0) * UNIFORM_STD * box
    rows: dict[str, dict] = {}

    def add(label: str, pv: tuple[list[np.ndarray], list[np.ndarray]], **extra) -> None:
        xi, err = pooled_xi(pv[0], box)
        v12, v12_err = pooled_v12(*pv, box)
        rows[label] = {"xi": xi.round(3).tolist(), "err": err.round(3).tolist(), "v12": v12.round(4).tolist(),
                       "v12_err": v12_err.round(4).tolist(), **extra}

    gen = torch.Generator().manual_seed(args.seed)
    sim_pos, sim_vel = split_standardised(model, x)
    add("simulations", (sim_pos, sim_vel))
    blur = np.random.default_rng(args.seed)
    add(f"simulations + decoder blur ({resolution:.2f} Mpc/h)",
        ([np.mod(p + blur.normal(scale=resolution, size=p.shape), box) for p in sim_pos], sim_vel))
    full = sample(model.vdm, theta, model.n_halos, args.steps, gen, method="ancestral")
    add(f"samples (ancestral {args.steps})", split_standardised(model, full))
    add("  the same, denoised once at t = 0", split_standardised(model, final_denoise(model.vdm, full, theta)))
    z0 = x + resolution / (UNIFORM_STD * box) * torch.randn(x.shape, generator=gen)
    add("simulations + decoder blur, denoised once at t = 0",
        split_standardised(model, final_denoise(model.vdm, z0, theta)))
    for scale in args.scales:
        t = time_for_noise(model, scale)
        with torch.no_grad():
            a, s = alpha_sigma(model.vdm.schedule(torch.tensor([t]))[0][0])
        z = a * x + s * torch.randn(x.shape, generator=gen)
        steps = max(2, round(args.steps * t))
        out = sample(model.vdm, theta, model.n_halos, steps, gen, method="ancestral", t_start=t, z_start=z)
        add(f"simulations noised to {scale:g} Mpc/h, denoised", split_standardised(model, out),
            t=round(t, 4), steps=steps)
    print(f"model {args.model}; {len(sims)} simulations at (Omega_m, sigma_8) = {chosen}; decoder resolution "
          f"{resolution:.2f} Mpc/h per axis (gamma_0 = {gamma_0:g})")
    for key, err, edges, unit in (("xi", "err", EDGES, ""), ("v12", "v12_err", V12_EDGES, " / v_rms")):
        centres = np.sqrt(edges[1:] * edges[:-1])
        print(f"{key + '(r)' + unit + ', r [Mpc/h] =':<52}" + "".join(f"{r:>8.2f}" for r in centres))
        for label, r in rows.items():
            print(f"{label:<52}" + "".join(f"{v:>8.3f}" for v in r[key]))
            print(f"{'  +-':<52}" + "".join(f"{v:>8.3f}" for v in r[err]))
    report = {"model": args.model, "cosmologies": chosen, "n": len(sims), "edges": EDGES.tolist(),
              "v12_edges": V12_EDGES.tolist(), "v12_unit": "each box's velocity rms",
              "decoder_resolution_mpc_h": round(resolution, 3), "gamma_0": gamma_0, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
