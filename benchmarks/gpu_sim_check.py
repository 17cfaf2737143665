"""CUDA vs CPU agreement and timings of the built-in N-body model (run on a GPU machine).

Usage::

    python benchmarks/gpu_sim_check.py                      # default box, both devices, + a small suite
    python benchmarks/gpu_sim_check.py --suite-boxes 0      # skip the suite throughput run

Checks (exit status 1 if one fails), for the default configuration at the fiducial cosmology and one
seed, gravity on the CPU (numba, float64 particles) and on CUDA (torch, float32 particles, atomics):

* the matter P(k) of the final particles agrees within 1 % per shell up to half the particle Nyquist
  frequency (float32 and summation order are the only differences);
* particle positions agree: rms difference well below the linking length (0.2 mean separations),
  i.e. < 0.05 Mpc/h, and < 1 % of the rms displacement;
* the halo catalogs agree: cumulative counts above 20, 50 and 100 particles within 3 % and the 100
  most massive halos have a CPU counterpart within 1 Mpc/h for >= 95 % of them.

Timings: ICs / gravity / FoF split on both devices, the GPU FFT floor, and (``--suite-boxes``) the
throughput of ``lssviewer suite --workers W`` on the GPU. Results go to
``benchmarks/results/gpu_sim_check.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--suite-boxes", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "gpu_sim_check.json")
    parser.add_argument("--device", default="cuda", help="the device checked against the CPU (torch-cpu: dry run)")
    parser.add_argument("--small", action="store_true", help="64^3 particles in 200 Mpc/h (dry run)")
    args = parser.parse_args()

    import torch

    from lssviewer.cosmology import FIDUCIAL
    from lssviewer.sim import DEFAULT_CONFIG, simulate
    from lssviewer.sim.fof import fof_labels, select_groups
    from lssviewer.sim.pm import default_threads
    from lssviewer.sim.power import particle_power

    gpu = args.device
    if gpu.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    cfg = DEFAULT_CONFIG.replace(particles=64, box_size=200.0, n_halos=100) if args.small else DEFAULT_CONFIG
    threads = default_threads()
    out: dict = {"gpu": torch.cuda.get_device_name(0) if gpu.startswith("cuda") else gpu, "threads": threads,
                 "config": cfg.to_dict()}
    small = cfg.replace(particles=32, box_size=100.0, n_halos=1)
    results = {}
    for device in ("cpu", gpu):
        simulate(FIDUCIAL, 0, small, device=device, threads=threads, check_halo_count=False)  # warm-up
        best = None
        for _ in range(2):
            res = simulate(FIDUCIAL, args.seed, cfg, device=device, threads=threads, keep_particles=True)
            if best is None or res.summary["time_total"] < best.summary["time_total"]:
                best = res
        results[device] = best
        s = best.summary
        print(f"{device:5s}: ICs {s['time_ics']:.3f} s  gravity {s['time_gravity']:.3f} s  FoF {s['time_fof']:.3f} s"
              f"  total {s['time_total']:.3f} s  split {s['gravity_split']}")
        out[device] = {k: s[k] for k in ("time_ics", "time_gravity", "time_fof", "time_total", "gravity_split")}

    # GPU FFT floor: (steps + 1) x (1 rfftn + 3 irfftn)
    dev = "cpu" if gpu == "torch-cpu" else gpu
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    x = torch.randn((cfg.mesh,) * 3, device=dev)
    torch.fft.irfftn(torch.fft.rfftn(x), s=x.shape)
    sync()
    t0 = time.perf_counter()
    for _ in range(cfg.steps + 1):
        xk = torch.fft.rfftn(x)
        for _ in range(3):
            torch.fft.irfftn(xk * 1j, s=x.shape)
    sync()
    out["gpu_fft_floor"] = time.perf_counter() - t0
    out["gpu_gravity_over_fft_floor"] = out[gpu]["time_gravity"] / out["gpu_fft_floor"]
    print(f"{gpu} FFT floor {out['gpu_fft_floor']:.3f} s; gravity / floor {out['gpu_gravity_over_fft_floor']:.2f}")

    failures = []
    pos_c, _ = results["cpu"].particles
    pos_g, _ = results[gpu].particles
    pk_c = particle_power(pos_c, cfg.box_size, cfg.mesh, threads=threads)
    pk_g = particle_power(pos_g, cfg.box_size, cfg.mesh, threads=threads)
    keep = pk_c["k"] < 0.5 * np.pi * cfg.particles / cfg.box_size
    pk_dev = float(np.max(np.abs(pk_g["power"][keep] / pk_c["power"][keep] - 1)))
    out["pk_max_rel_diff"] = pk_dev
    if pk_dev > 0.01:
        failures.append(f"P(k) differs by {pk_dev:.3%}")
    d = np.mod(pos_g - pos_c + cfg.box_size / 2, cfg.box_size) - cfg.box_size / 2
    rms_diff = float(np.sqrt(np.mean(np.sum(d**2, axis=1))))
    from lssviewer.sim.ics import lattice

    disp = np.mod(pos_c - lattice(cfg.particles, cfg.box_size) + cfg.box_size / 2, cfg.box_size) - cfg.box_size / 2
    rms_disp = float(np.sqrt(np.mean(np.sum(disp**2, axis=1))))
    out["rms_position_diff"] = rms_diff
    out["rms_displacement"] = rms_disp
    if rms_diff > 0.05 or rms_diff > 0.01 * rms_disp:
        failures.append(f"positions differ by {rms_diff:.3g} Mpc/h rms (displacement {rms_disp:.3g})")

    link = cfg.linking_length * cfg.mean_separation
    counts = {}
    for device, pos in (("cpu", pos_c), (gpu, pos_g)):
        _, sizes = select_groups(fof_labels(pos, cfg.box_size, link), cfg.min_particles)
        counts[device] = {n: int(np.count_nonzero(sizes >= n)) for n in (20, 50, 100)}
    out["halo_counts"] = counts
    for n in (20, 50, 100):
        a, b = counts["cpu"][n], counts[gpu][n]
        if abs(a - b) > 0.03 * max(a, 1):
            failures.append(f"halo counts above {n} particles: cpu {a}, {gpu} {b}")
    from scipy.spatial import cKDTree

    top_c = results["cpu"].catalog.positions[:100]
    top_g = results[gpu].catalog.positions[:100]
    dist, _ = cKDTree(top_c, boxsize=cfg.box_size).query(top_g)
    matched = float(np.mean(dist < 1.0))
    out["top100_matched_within_1mpc"] = matched
    if matched < 0.95:
        failures.append(f"only {matched:.0%} of the 100 largest halos match")
    print(f"P(k) max rel diff {pk_dev:.2e}; rms position diff {rms_diff:.2e} Mpc/h (displacement {rms_disp:.2f});"
          f" halo counts {counts}; top-100 matched {matched:.0%}")

    if args.suite_boxes:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "lssviewer", "suite", "-n", str(args.suite_boxes), "--seed", "5",
                   "-o", str(Path(tmp) / "suite.h5"), "--workers", str(args.workers), "--device", gpu,
                   "--json", "--no-progress"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                failures.append(f"suite run failed: {proc.stderr.strip()[-300:]}")
            else:
                report = json.loads(proc.stdout)
                report["wall_with_startup"] = wall
                out["suite"] = report
                print(f"suite: {report['made']} boxes with {args.workers} workers on {gpu}: "
                      f"{report['seconds_per_box']:.2f} s/box, {report['boxes_per_hour']:.0f} boxes/hour")
    out["failures"] = failures
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1, default=float))
    print("FAIL: " + "; ".join(failures) if failures else "all CUDA/CPU agreement checks passed")
    print(f"wrote {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
