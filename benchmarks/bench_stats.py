"""Benchmark of lssviewer.stats on Quijote-sized catalogs: 5000 halos in a 1 Gpc/h box.

Times every statistic on one catalog (median of ``--repeats`` runs after one warm-up) and on a
batch of ``--batch`` catalogs (one run), for uniform points and for a clustered mock
(Neyman-Scott: Gaussian clumps, which makes pair counting harder than uniform points). Targets
from issue 4: xi with 25 bins to 150 Mpc/h in <= 0.2 s on 2 cores.
When Corrfunc is importable, also times Corrfunc's DD (and DDsmu for the multipoles) on the same
points and threads, checks that its pair counts equal ours, and reports the time ratio.

    python benchmarks/bench_stats.py            # table on stdout, JSON in benchmarks/results/stats.json
    python benchmarks/bench_stats.py --batch 10 --repeats 3

Timings on shared machines are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from lssviewer import Cosmology, HaloCatalog, stats
from lssviewer.stats.pairs import pair_counts

BOX = 1000.0
N_HALOS = 5000
XI_EDGES = np.linspace(0.0, 150.0, 26)


def uniform_catalog(seed: int) -> HaloCatalog:
    rng = np.random.default_rng(seed)
    return HaloCatalog(rng.uniform(0, BOX, (N_HALOS, 3)), rng.normal(0, 350, (N_HALOS, 3)),
                       1e13 * rng.uniform(0, 1, N_HALOS) ** -1.0, BOX, 0.5, Cosmology(0.3175, 0.834),
                       name=f"uniform-{seed}")


def clustered_catalog(seed: int, per_clump: int = 5, spread: float = 8.0) -> HaloCatalog:
    """Neyman-Scott mock: N/per_clump uniform centres, members Gaussian around them (spread in Mpc/h),
    velocities with a clump bulk flow plus a random part."""
    rng = np.random.default_rng(seed)
    n_c = N_HALOS // per_clump
    centres = rng.uniform(0, BOX, (n_c, 3))
    pos = np.repeat(centres, per_clump, axis=0) + rng.normal(0, spread, (N_HALOS, 3))
    vel = np.repeat(rng.normal(0, 300, (n_c, 3)), per_clump, axis=0) + rng.normal(0, 200, (N_HALOS, 3))
    return HaloCatalog(pos, vel, 1e13 * rng.uniform(0, 1, N_HALOS) ** -1.0, BOX, 0.5, Cosmology(0.3175, 0.834),
                       name=f"clustered-{seed}", wrap=True)


CASES = [
    ("xi", "xi, 25 bins to 150 Mpc/h", dict(edges=XI_EDGES)),
    ("xi", "xi + jackknife errors (27 subvolumes)", dict(edges=XI_EDGES, jackknife=3)),
    ("xi-rsd", "xi_0,2,4 (s), 25 bins to 150 Mpc/h", dict(edges=XI_EDGES)),
    ("pairwise", "v12(r), 25 bins to 150 Mpc/h", dict(edges=XI_EDGES)),
    ("pk", "P_0,2,4 (k), CIC, 128^3 mesh", dict(mesh=128)),
    ("pk", "P_0,2,4 (k), TSC + interlacing, 128^3", dict(mesh=128, assignment="tsc", interlace=True)),
    ("knn", "kNN-CDF k=1,2,4,8, 1e5 randoms", dict(ks=(1, 2, 4, 8), n_random=100_000)),
    ("hmf", "mass function", {}),
    ("vpdf", "velocity PDFs", {}),
]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def corrfunc_comparison(cat: HaloCatalog, threads: int, repeats: int) -> dict:
    try:
        from Corrfunc.theory import DD, DDsmu
    except ImportError as exc:
        return {"available": False, "reason": f"Corrfunc not importable: {exc}"}
    x, y, z = (np.ascontiguousarray(cat.positions[:, i]) for i in range(3))
    edges_cf = XI_EDGES[1:] if XI_EDGES[0] == 0 else XI_EDGES  # Corrfunc needs rmin > 0

    def cf_dd():
        return DD(1, threads, edges_cf, x, y, z, periodic=True, boxsize=BOX, verbose=False)

    ours = pair_counts(cat.positions, BOX, edges_cf)
    theirs = cf_dd()["npairs"].astype(float)  # Corrfunc counts each pair twice, like our ordered pairs
    t_cf = _time(cf_dd, repeats)
    t_ours = _time(lambda: stats.compute("xi", cat, edges=XI_EDGES), repeats)

    def cf_smu():
        return DDsmu(1, threads, edges_cf, 1.0, 100, x, y, z, periodic=True, boxsize=BOX, verbose=False)

    t_cf_smu = _time(cf_smu, repeats)
    t_ours_smu = _time(lambda: stats.compute("xi-rsd", cat, edges=XI_EDGES), repeats)
    return {"available": True, "threads": threads, "dd_counts_equal": bool(np.array_equal(ours, theirs)),
            "corrfunc_dd_s": t_cf, "lssviewer_xi_s": t_ours, "ratio_xi": t_ours / t_cf,
            "corrfunc_ddsmu_100mu_s": t_cf_smu, "lssviewer_xi_rsd_s": t_ours_smu,
            "ratio_multipoles": t_ours_smu / t_cf_smu,
            "note": "lssviewer times include RR, xi and (for xi-rsd) the redshift-space mapping; "
                    "Corrfunc times are pair counting only (DDsmu with 100 mu bins, not multipoles)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stats.json"))
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    rows = []
    for kind, make in (("uniform", uniform_catalog), ("clustered", clustered_catalog)):
        one = make(0)
        batch = [make(s) for s in range(1, args.batch + 1)]
        for name, label, opts in CASES:
            t1 = _time(lambda name=name, opts=opts, one=one: stats.compute(name, one, **opts), args.repeats)
            t = time.perf_counter()
            res = stats.compute(name, batch, **opts)
            tb = time.perf_counter() - t
            assert res.n_catalogs == args.batch
            rows.append({"points": kind, "stat": name, "what": label, "one_catalog_s": t1,
                         f"batch_{args.batch}_s": tb, "per_catalog_in_batch_s": tb / args.batch})
    cf = corrfunc_comparison(uniform_catalog(0), threads, args.repeats)
    cf_clustered = corrfunc_comparison(clustered_catalog(0), threads, args.repeats)
    target = {"xi_5000_halos_25_bins_150": 0.2}
    xi_times = {r["points"]: r["one_catalog_s"] for r in rows if r["what"] == CASES[0][1]}
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": threads,
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                    "numpy": np.__version__},
        "setup": {"n_halos": N_HALOS, "box_size": BOX, "repeats": args.repeats, "batch": args.batch},
        "rows": rows, "corrfunc": {"uniform": cf, "clustered": cf_clustered},
        "targets": {"xi_s": target["xi_5000_halos_25_bins_150"], "xi_met": all(t <= 0.2 for t in xi_times.values()),
                    "xi_measured_s": xi_times},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    print(f"lssviewer.stats, {N_HALOS} halos in a {BOX:g} Mpc/h box, {threads} cores "
          f"(load {result['machine']['load_average']}); median of {args.repeats}")
    batch_head = f"{args.batch} catalogs [s]"
    print(f"{'points':<10} {'statistic':<42} {'1 catalog [s]':>14} {batch_head:>16} {'per cat. [s]':>13}")
    for r in rows:
        print(f"{r['points']:<10} {r['what']:<42} {r['one_catalog_s']:14.4f} {r[f'batch_{args.batch}_s']:16.2f} "
              f"{r['per_catalog_in_batch_s']:13.4f}")
    for kind, c in (("uniform", cf), ("clustered", cf_clustered)):
        if c["available"]:
            print(f"Corrfunc ({kind}, {c['threads']} threads): DD {c['corrfunc_dd_s']:.4f} s vs lssviewer xi "
                  f"{c['lssviewer_xi_s']:.4f} s (ratio {c['ratio_xi']:.2f}, counts equal: {c['dd_counts_equal']}); "
                  f"DDsmu {c['corrfunc_ddsmu_100mu_s']:.4f} s vs xi-rsd {c['lssviewer_xi_rsd_s']:.4f} s "
                  f"(ratio {c['ratio_multipoles']:.2f})")
        else:
            print(f"Corrfunc: {c['reason']}")
    print(f"target xi <= 0.2 s: {'met' if result['targets']['xi_met'] else 'NOT met'} ({xi_times}); wrote {out}")


if __name__ == "__main__":
    main()
