"""Do samples lose clustering across the faces of the box? (The diffusion is Euclidean, the box periodic.)

    python training/experiments/periodic_faces/faces.py [--model DIR] [--fresh training/default/fresh.h5]
        [--steps K] [--final denoise|decoder_mean] [--spacing logsnr|time] [-o results.json]

The VDM noises standardised positions in R^3, not on the torus; the network sees periodic Fourier features of
its current estimate, but a halo whose neighbours lie across a face must be denoised from a latent that, in
R^3, is a box length away from theirs. If the model did not learn that, samples would lack pairs across the
faces (and their infall) while pairs inside the box look right. In simulations the fraction of pairs at
separation r whose minimum image crosses a face is a geometric number, the same for any homogeneous clustering.

For the simulations of ``--fresh`` and as many model samples at each of their cosmologies (the model card's
seeds and sampler), per separation bin, pooled over catalogs: the fraction of pairs that cross a face, the
mean radial pairwise velocity v12 of crossing and of inner pairs (km/s), the number density of halos against
their distance to the nearest face, with errors from the catalog-to-catalog scatter (delete-one jackknife over
catalogs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from lssviewer.io import hdf5  # noqa: E402
from lssviewer.model import load_model  # noqa: E402

EDGES = np.array([1.0, 2.0, 4.0, 6.0, 10.0, 14.0, 20.0, 30.0])
FACE_EDGES = np.array([0.0, 10.0, 20.0, 40.0, 80.0, 200.0])  # distance to the nearest face, Mpc/h
PAIR_FACE = (("near", 0.0, 30.0), ("mid", 30.0, 80.0), ("deep", 80.0, 1e9))  # nearer halo's distance to a face


def per_catalog(pos: np.ndarray, vel: np.ndarray, box: float) -> dict[str, np.ndarray]:
    """Pair counts and v12 sums of crossing / inner pairs per separation bin, and halo counts per face shell."""
    pos = np.mod(np.asarray(pos, float), box)
    pairs = cKDTree(pos, boxsize=box).query_pairs(EDGES[-1], output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = pos[j] - pos[i]
    cross = np.any(np.abs(d) > 0.5 * box, axis=1)
    d -= box * np.round(d / box)
    r = np.linalg.norm(d, axis=1)
    v12 = np.einsum("ij,ij->i", vel[j] - vel[i], d) / np.maximum(r, 1e-12)
    k = np.digitize(r, EDGES) - 1
    ok = (k >= 0) & (k < len(EDGES) - 1)
    nb = len(EDGES) - 1
    out = {}
    for name, sel in (("cross", ok & cross), ("inner", ok & ~cross)):
        out[f"n_{name}"] = np.bincount(k[sel], minlength=nb).astype(float)
        out[f"v_{name}"] = np.bincount(k[sel], weights=v12[sel], minlength=nb)
    face = np.min(np.minimum(pos, box - pos), axis=1)
    out["face"] = np.histogram(face, FACE_EDGES)[0].astype(float)
    pair_face = np.minimum(face[i], face[j])
    for name, lo, hi in PAIR_FACE:
        sel = ok & (pair_face >= lo) & (pair_face < hi)
        out[f"n_{name}"] = np.bincount(k[sel], minlength=nb).astype(float)
        out[f"v_{name}"] = np.bincount(k[sel], weights=v12[sel], minlength=nb)
    return out


def shell_volume_fraction(box: float) -> np.ndarray:
    """Fraction of the box volume at each distance-to-the-nearest-face shell (exact: nested cubes)."""
    inner = np.clip(box - 2.0 * FACE_EDGES, 0.0, None) ** 3 / box**3
    return inner[:-1] - inner[1:]


def pooled(parts: list[dict[str, np.ndarray]]) -> dict[str, list]:
    """Pooled ratios with standard errors from the scatter of per-catalog values (delete-one jackknife over
    catalogs)."""
    tot = {key: sum(p[key] for p in parts) for key in parts[0]}

    def stats(tot_, n_cat):
        n_all = tot_["n_cross"] + tot_["n_inner"]
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"cross_fraction": tot_["n_cross"] / n_all,
                    "v12_cross": tot_["v_cross"] / tot_["n_cross"],
                    "v12_inner": tot_["v_inner"] / tot_["n_inner"],
                    "face_density": tot_["face"] / tot_["face"].sum(),
                    **{f"v12_{name}": tot_[f"v_{name}"] / tot_[f"n_{name}"] for name, _, _ in PAIR_FACE},
                    **{f"pairs_{name}": tot_[f"n_{name}"] / n_cat for name, _, _ in PAIR_FACE}}

    n = len(parts)
    full = stats(tot, n)
    jack = [stats({key: tot[key] - p[key] for key in tot}, n - 1) for p in parts]
    out = {}
    for key, val in full.items():
        arr = np.array([jk[key] for jk in jack])
        err = np.sqrt((n - 1) / n * np.nansum((arr - arr.mean(axis=0)) ** 2, axis=0))
        out[key] = [round(float(x), 4) for x in val]
        out[key + "_err"] = [round(float(x), 4) for x in err]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources/models/default"))
    ap.add_argument("--fresh", default=str(ROOT / "training/default/fresh.h5"))
    ap.add_argument("--final", choices=("denoise", "decoder_mean"))
    ap.add_argument("--steps", type=int)
    ap.add_argument("--sampler")
    ap.add_argument("--spacing", choices=("logsnr", "time"))
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    sims = hdf5.read(args.fresh)
    groups = defaultdict(list)
    for c in sims:
        groups[(round(c.omega_m, 6), round(c.sigma_8, 6))].append(c.top_n(model.n_halos))
    sim_parts, smp_parts = [], []
    for k, (theta, cats) in enumerate(sorted(groups.items())):
        samples = model.sample(*theta, n=len(cats), seed=k, allow_extrapolation=True, final=args.final,
                               steps=args.steps, method=args.sampler, spacing=args.spacing)
        sim_parts += [per_catalog(c.positions, c.velocities, c.box_size) for c in cats]
        smp_parts += [per_catalog(c.positions, c.velocities, c.box_size) for c in samples]
    box = model.box_size
    out = {"edges": EDGES.tolist(), "face_edges": FACE_EDGES.tolist(),
           "face_volume_fraction": [round(float(x), 4) for x in shell_volume_fraction(box)],
           "n_catalogs": len(sim_parts), "simulations": pooled(sim_parts), "samples": pooled(smp_parts),
           "sampler": {"final": args.final or model.sampler_final, "steps": args.steps or model.default_steps,
                       "method": args.sampler or model.sampler, "spacing": args.spacing or model.sampler_spacing}}
    print(f"{'r [Mpc/h]':>10} | {'cross frac sims':>16} {'samples':>16} | {'v12 cross sims':>15} {'samples':>15} |"
          f" {'v12 inner sims':>15} {'samples':>15}")
    sm, sp = out["simulations"], out["samples"]

    def cell(d: dict, key: str, b: int, nd: int = 3) -> str:
        return f"{d[key][b]:.{nd}f}+-{d[key + '_err'][b]:.{nd}f}"

    for b in range(len(EDGES) - 1):
        print(f"{EDGES[b]:4.0f}-{EDGES[b + 1]:<4.0f} | {cell(sm, 'cross_fraction', b):>16} "
              f"{cell(sp, 'cross_fraction', b):>16} | {cell(sm, 'v12_cross', b, 0):>15} "
              f"{cell(sp, 'v12_cross', b, 0):>15} | {cell(sm, 'v12_inner', b, 0):>15} "
              f"{cell(sp, 'v12_inner', b, 0):>15}")
    print("v12 [km/s] and pairs per catalog by the pair's nearer halo's distance to a face:")
    for b in range(len(EDGES) - 1):
        cells = []
        for name, _, _ in PAIR_FACE:
            cells.append(f"{name} v12 {sm['v12_' + name][b]:5.0f}/{sp['v12_' + name][b]:5.0f}"
                         f"+-{sm['v12_' + name + '_err'][b]:3.0f}/{sp['v12_' + name + '_err'][b]:3.0f}"
                         f" n {sm['pairs_' + name][b]:6.1f}/{sp['pairs_' + name][b]:6.1f}")
        print(f"{EDGES[b]:4.0f}-{EDGES[b + 1]:<4.0f} (sims/samples) | " + " | ".join(cells))
    print("halo fraction by distance to the nearest face [Mpc/h] (volume fraction):")
    for b in range(len(FACE_EDGES) - 1):
        print(f"{FACE_EDGES[b]:5.0f}-{FACE_EDGES[b + 1]:<5.0f} sims {sm['face_density'][b]:.4f}+-"
              f"{sm['face_density_err'][b]:.4f} samples {sp['face_density'][b]:.4f}+-{sp['face_density_err'][b]:.4f}"
              f" volume {out['face_volume_fraction'][b]:.4f}")
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
