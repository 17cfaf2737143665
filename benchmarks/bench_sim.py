"""Benchmark and full validation of the built-in N-body model (lssviewer.sim).

Usage::

    python benchmarks/bench_sim.py                 # everything (about 5-10 min on 2 cores)
    python benchmarks/bench_sim.py --only timing   # timing, FFT floor and suite-writing cost only
    python benchmarks/bench_sim.py --device cuda   # gravity on the GPU

Sections (each prints a table; all results go to benchmarks/results/bench_sim.json):

* timing: one box of the default configuration split into ICs / gravity / FoF, the gravity split
  (paint, FFT, k-space kernel, readout, drift), next to the FFT floor: the same number of FFTs
  ((steps + 1) x (1 forward + 3 inverse)) on the same mesh timed alone. Also the CPU time of the
  process, which on a machine shared with other jobs is a better guide to the cost on an idle one.
* corners: the particle count of the N-th most massive halo at the four corners of the prior and at
  the fiducial cosmology (the default-configuration criterion: >= 20 everywhere).
* scatter: FoF groups of >= 20 particles at (0.1, 0.6) for seeds 1-4 (the margin behind N).
* hmf: cumulative FoF mass function above 50, 70, 100 particles vs Watson et al. 2013 (colossus)
  for the same five boxes (criterion: within 25 % above 50 particles, for >= 3 cosmologies).
* power: fixed-amplitude initial conditions (|delta_k|^2 = P_lin exactly) and their phase-inverted
  pair (Angulo & Pontzen 2016) at three cosmologies: P(k) of the final particles / (D(z)^2 P_lin)
  for k < 0.05 h/Mpc, P_lin averaged over the very modes of each shell (criterion: within 5 %).
  A single 400 Mpc/h box scatters by a few per cent at k ~ 0.05 from nonlinear mode coupling of
  its own realisation; the pair mean cancels the leading (odd) term.
* clustering: linear bias of the n_halos most massive halos from the cross-correlation with the initial
  linear field at sigma_8 = 0.7, 0.834, 0.95 (same seed) vs the Tinker et al. 2010 bias of their masses.
* append: cost of lssviewer.io.hdf5.append (copy + rename) for a suite growing to 1000 boxes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_sim.json"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}")
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(_fmt(v).ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ---------------------------------------------------------------------------------------------------


def fft_floor(mesh: int, n_force: int, threads: int, device: str) -> float:
    """Seconds for n_force x (1 rfftn + 3 irfftn) on a mesh^3 float32 array, as in the PM force."""
    if device == "cpu":
        import scipy.fft

        x = np.random.default_rng(0).standard_normal((mesh,) * 3).astype(np.float32)
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=threads), s=x.shape, workers=threads)  # warm plans
        t0 = time.perf_counter()
        for _ in range(n_force):
            xk = scipy.fft.rfftn(x, workers=threads)
            for _ in range(3):
                scipy.fft.irfftn(xk.copy(), s=x.shape, workers=threads, overwrite_x=True)
        return time.perf_counter() - t0
    import torch

    x = torch.randn((mesh,) * 3, device=device)
    torch.fft.irfftn(torch.fft.rfftn(x), s=x.shape)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n_force):
        xk = torch.fft.rfftn(x)
        for _ in range(3):
            torch.fft.irfftn(xk * 1j, s=x.shape)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def section_timing(device: str, threads: int, repeats: int) -> dict:
    from lssviewer.cosmology import FIDUCIAL
    from lssviewer.sim import DEFAULT_CONFIG, simulate

    cfg = DEFAULT_CONFIG
    simulate(FIDUCIAL, 0, cfg.replace(particles=32, box_size=100.0, n_halos=1), device=device,
             threads=threads, check_halo_count=False)  # compile / load the numba cache
    runs = []
    for r in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        _, s = simulate(FIDUCIAL, 100 + r, cfg, device=device, threads=threads)
        runs.append(dict(s, wall=time.perf_counter() - t0, cpu=cpu_seconds() - c0))
    best = min(runs, key=lambda s: s["wall"])
    floor = min(fft_floor(cfg.mesh, cfg.steps + 1, threads, device) for _ in range(2))
    split = best["gravity_split"]
    rows = [["ICs (2LPT)", best["time_ics"]], ["gravity", best["time_gravity"]]]
    rows += [[f"  {k}", v] for k, v in split.items()]
    rows += [["FoF + halo properties", best["time_fof"]], ["total (simulate)", best["time_total"]],
             ["CPU time of the box (all threads)", best["cpu"]],
             [f"FFT floor: {cfg.steps + 1} x (1 + 3) FFTs of {cfg.mesh}^3", floor],
             ["gravity / FFT floor", best["time_gravity"] / floor]]
    table(f"timing: default box ({cfg.particles}^3 particles, {cfg.mesh}^3 mesh, {cfg.steps} steps, "
          f"{cfg.box_size:g} Mpc/h) on {device}, {threads} threads, best of {repeats}", ["part", "seconds"], rows)
    cli = None
    if device == "cpu":  # the whole command, imports included
        import subprocess

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lssviewer", "simulate", "--omega-m", "0.3175", "--sigma-8",
                            "0.834", "--seed", "1", "-o", str(Path(tmp) / "box.h5"), "--device", device],
                           check=True, capture_output=True)
            cli = time.perf_counter() - t0
        print(f"`lssviewer simulate` with defaults, end to end: {cli:.2f} s")
    return {"runs": runs, "fft_floor": floor, "gravity_over_fft_floor": best["time_gravity"] / floor,
            "cli_wall": cli, "load_average": os.getloadavg()}


CORNERS = [(0.1, 0.6), (0.1, 1.0), (0.5, 0.6), (0.5, 1.0), (0.3175, 0.834)]


def _cumulative_watson(cosmo, m_min, volume, z=0.5):
    from scipy import integrate

    lnm = np.linspace(np.log(m_min), np.log(1e16), 400)
    return float(integrate.trapezoid(cosmo.mass_function(np.exp(lnm), z), lnm) * volume)


def section_corners_hmf(device: str, threads: int, seed: int) -> dict:
    from lssviewer.cosmology import Cosmology
    from lssviewer.sim import DEFAULT_CONFIG, simulate
    from lssviewer.sim.fof import fof_labels, select_groups

    cfg = DEFAULT_CONFIG
    corner_rows, hmf_rows, out = [], [], []
    for om, s8 in CORNERS:
        cosmo = Cosmology(omega_m=om, sigma_8=s8)
        res = simulate(cosmo, seed, cfg, device=device, threads=threads, keep_particles=True)
        pos, _ = res.particles
        _, sizes = select_groups(fof_labels(pos, cfg.box_size, cfg.linking_length * cfg.mean_separation),
                                 cfg.min_particles)
        mp = cfg.particle_mass(om)
        theory_nth = _nth_particles_watson(cosmo, cfg)
        corner_rows.append([f"({om}, {s8})", int(len(sizes)), res.summary["nth_halo_particles"], theory_nth,
                            res.summary["time_total"]])
        entry = {"omega_m": om, "sigma_8": s8, "groups_ge_min": int(len(sizes)),
                 "nth_halo_particles": res.summary["nth_halo_particles"], "nth_theory": theory_nth, "hmf": []}
        for npart in (50, 70, 100):
            expected = _cumulative_watson(cosmo, npart * mp, cfg.box_size**3)
            found = int(np.count_nonzero(sizes >= npart))
            entry["hmf"].append({"particles": npart, "found": found, "watson13": expected,
                                 "ratio": found / expected})
            hmf_rows.append([f"({om}, {s8})", npart, f"{npart * mp:.3g}", found, round(expected, 1),
                             round(found / expected, 3), f"{1 / np.sqrt(max(expected, 1)):.2f}"])
        out.append(entry)
    table(f"corners: halos of >= {cfg.min_particles} particles and the {cfg.n_halos}-th most massive halo "
          f"(seed {seed})", ["(Omega_m, sigma_8)", "groups >= min", "N-th halo particles",
                             "N-th (Watson13 expectation)", "box seconds"], corner_rows)
    table("hmf: cumulative FoF counts vs Watson et al. 2013 (z = 0.5)",
          ["(Omega_m, sigma_8)", ">= particles", "M_min [Msun/h]", "found", "Watson13", "ratio",
           "Poisson 1/sqrt(N)"], hmf_rows)
    return {"boxes": out}


def _nth_particles_watson(cosmo, cfg) -> float:
    from scipy.optimize import brentq

    vol = cfg.box_size**3
    mp = cfg.particle_mass(cosmo.omega_m)
    f = lambda lnm: _cumulative_watson(cosmo, np.exp(lnm), vol) - cfg.n_halos  # noqa: E731
    return round(float(np.exp(brentq(f, np.log(1e10), np.log(1e16))) / mp), 1)


def section_scatter(device: str, threads: int, seeds: range = range(1, 5)) -> dict:
    """Box-to-box scatter of the number of FoF groups >= min_particles at the poorest corner."""
    from lssviewer.cosmology import Cosmology
    from lssviewer.sim import DEFAULT_CONFIG, simulate
    from lssviewer.sim.fof import fof_labels, select_groups

    cfg = DEFAULT_CONFIG
    cosmo = Cosmology(omega_m=0.1, sigma_8=0.6)
    mp = cfg.particle_mass(0.1)
    expected50 = _cumulative_watson(cosmo, 50 * mp, cfg.box_size**3)
    rows, out = [], []
    for seed in seeds:
        res = simulate(cosmo, seed, cfg, device=device, threads=threads, keep_particles=True)
        _, sizes = select_groups(fof_labels(res.particles[0], cfg.box_size,
                                            cfg.linking_length * cfg.mean_separation), cfg.min_particles)
        n50 = int(np.count_nonzero(sizes >= 50))
        rows.append([seed, len(sizes), res.summary["nth_halo_particles"], n50, round(n50 / expected50, 3)])
        out.append({"seed": seed, "groups_ge_min": int(len(sizes)), "nth_halo_particles":
                    res.summary["nth_halo_particles"], "ge50": n50, "ge50_over_watson": n50 / expected50})
    counts = np.array([o["groups_ge_min"] for o in out])
    table(f"scatter: (0.1, 0.6), FoF groups of >= {cfg.min_particles} particles per seed "
          f"(mean {counts.mean():.0f}, std {counts.std(ddof=1):.0f}; N = {cfg.n_halos})",
          ["seed", "groups >= min", "N-th halo particles", ">= 50 particles", "/ Watson13"], rows)
    return {"seeds": out, "mean": float(counts.mean()), "std": float(counts.std(ddof=1))}


def section_power(device: str, threads: int, seed: int) -> dict:
    """Fixed-amplitude + paired boxes: P(k) of the pair mean vs D^2 P_lin averaged over the same modes."""
    from lssviewer.cosmology import Cosmology
    from lssviewer.sim import DEFAULT_CONFIG
    from lssviewer.sim.power import linear_field_power, particle_power
    from lssviewer.sim.simulate import evolve_particles

    rows, out = [], []
    for om, s8 in [(0.3175, 0.834), (0.5, 1.0), (0.1, 0.6)]:
        cosmo = Cosmology(omega_m=om, sigma_8=s8)
        finals, singles = [], []
        for inverted in (False, True):
            cfg = DEFAULT_CONFIG.replace(fixed_amplitude=True, invert_phases=inverted)
            st = evolve_particles(cosmo, seed, cfg, 0.5, device=device, threads=threads, keep_field=True)
            finals.append(particle_power(st.positions, cfg.box_size, cfg.mesh, threads=threads))
            plin = linear_field_power(st.delta_k, cfg.box_size)  # = P_lin averaged over the shell's modes
        d2 = float(cosmo.growth_factor(0.5)) ** 2
        k = finals[0]["k"]
        sel = k < 0.05
        n = int(sel.sum())
        pair = 0.5 * (finals[0]["power"][:n] + finals[1]["power"][:n])
        ratio = pair / (d2 * plin["power"][:n])
        singles = [f["power"][:n] / (d2 * plin["power"][:n]) for f in finals]
        for i in range(n):
            rows.append([f"({om}, {s8})", round(float(k[i]), 4), int(finals[0]["modes"][i]),
                         round(float(singles[0][i]), 4), round(float(singles[1][i]), 4), round(float(ratio[i]), 4)])
        out.append({"omega_m": om, "sigma_8": s8, "k": k[:n].tolist(), "pair_over_d2_plin": ratio.tolist(),
                    "single_over_d2_plin": [x.tolist() for x in singles],
                    "max_abs_deviation_pair": float(np.max(np.abs(ratio - 1)))})
    table("power: final particles / (D^2 P_lin averaged over the same modes), fixed-amplitude ICs, k < 0.05 h/Mpc",
          ["(Omega_m, sigma_8)", "k [h/Mpc]", "modes", "box", "phase-inverted box", "pair mean"], rows)
    return {"cosmologies": out}


def section_clustering(device: str, threads: int, seed: int) -> dict:
    import scipy.fft
    from colossus.cosmology import cosmology as cc
    from colossus.lss import bias

    from lssviewer.cosmology import Cosmology
    from lssviewer.sim import DEFAULT_CONFIG, simulate
    from lssviewer.sim.ics import linear_field
    from lssviewer.sim.pm import NumbaPM, cic_window

    cfg = DEFAULT_CONFIG
    rows, out = [], []
    for s8 in (0.7, 0.834, 0.95):
        cosmo = Cosmology(omega_m=0.3175, sigma_8=s8)
        cat, _ = simulate(cosmo, seed, cfg, device=device, threads=threads)
        delta_k = linear_field(cosmo, seed, cfg) * float(cosmo.growth_factor(0.5))
        m = cfg.particles
        pm = NumbaPM(m, cfg.box_size, len(cat))
        dh = scipy.fft.rfftn(pm.paint(np.ascontiguousarray(cat.positions)).astype(float) * m**3 / len(cat) - 1)
        kf = 2 * np.pi / cfg.box_size
        kx, kz = np.fft.fftfreq(m, 1 / m) * kf, np.fft.rfftfreq(m, 1 / m) * kf
        cell = cfg.box_size / m
        dh /= (cic_window(kx, cell)[:, None, None] * cic_window(kx, cell)[None, :, None]
               * cic_window(kz, cell)[None, None, :])
        kmag = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
        sel = (kmag > 0) & (kmag < 0.08)
        b = float(np.sum((dh[sel] * np.conj(delta_k[sel])).real) / np.sum(np.abs(delta_k[sel]) ** 2))
        cc.setCurrent(cosmo.colossus())
        b_th = float(np.mean(bias.haloBias(cat.masses, 0.5, "200m", model="tinker10")))
        rows.append([s8, round(b, 3), round(b_th, 3), round(b * s8, 3), round(b_th * s8, 3),
                     f"{cat.masses[-1]:.3g}"])
        out.append({"sigma_8": s8, "bias": b, "bias_tinker10": b_th, "n_halos": len(cat),
                    "nth_mass": float(cat.masses[-1])})
    table(f"clustering: top {cfg.n_halos} halos, linear bias (k < 0.08 h/Mpc, cross with the initial field)",
          ["sigma_8", "b measured", "b Tinker10", "b sigma_8", "b sigma_8 (theory)", "N-th mass"], rows)
    return {"top_n": out}


def section_append() -> dict:
    from lssviewer.catalog import HaloCatalog
    from lssviewer.cosmology import FIDUCIAL
    from lssviewer.io import hdf5
    from lssviewer.sim import DEFAULT_CONFIG

    rng = np.random.default_rng(0)
    n = DEFAULT_CONFIG.n_halos
    cat = HaloCatalog(rng.uniform(0, 400, (n, 3)), rng.normal(0, 300, (n, 3)), 10 ** rng.uniform(13, 15, n),
                      box_size=400.0, redshift=0.5, cosmology=FIDUCIAL, provenance={"seed": 1})
    rows, out = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.h5"
        hdf5.write([cat] * 999, path, dtype="float32")
        size = path.stat().st_size
        t0 = time.perf_counter()
        for _ in range(3):
            hdf5.append([cat], path, dtype="float32")
        per = (time.perf_counter() - t0) / 3
    rows.append([1000, f"{size / 1e6:.1f}", round(per, 3), round(per * 1000 / 2, 1)])
    out.append({"boxes": 1000, "file_mb": size / 1e6, "append_seconds": per,
                "total_for_1000_box_suite_estimate": per * 1000 / 2})
    table("append: one more box into a suite of 999 (float32)",
          ["boxes in file", "file MB", "seconds per append", "whole 1000-box suite (~n/2 average), s"], rows)
    return {"append": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+",
                        choices=("timing", "corners", "scatter", "power", "clustering", "append"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from lssviewer.sim import DEFAULT_CONFIG
    from lssviewer.sim.pm import default_threads
    from lssviewer.sim.simulate import resolve_device

    device = resolve_device(args.device)
    threads = args.threads or default_threads()
    sections = args.only or ["timing", "corners", "scatter", "power", "clustering", "append"]
    results: dict = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                                 "cpus": os.cpu_count(), "threads": threads, "device": device,
                                 "load_average_start": os.getloadavg()},
                     "config": DEFAULT_CONFIG.to_dict(), "date": time.strftime("%Y-%m-%d %H:%M")}
    if args.output.exists():
        previous = json.loads(args.output.read_text())
        results = {**previous, **{k: v for k, v in results.items()}}
    for name in sections:
        if name == "timing":
            results["timing"] = section_timing(device, threads, args.repeats)
        elif name == "corners":
            results["corners_hmf"] = section_corners_hmf(device, threads, args.seed)
        elif name == "scatter":
            results["scatter"] = section_scatter(device, threads)
        elif name == "power":
            results["power"] = section_power(device, threads, args.seed)
        elif name == "clustering":
            results["clustering"] = section_clustering(device, threads, args.seed)
        elif name == "append":
            results["append"] = section_append()
    results["machine"]["load_average_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, default=float))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
