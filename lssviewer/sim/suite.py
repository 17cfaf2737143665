"""Simulation suites: a Latin hypercube (or a list of cosmologies) of boxes in one native HDF5 file.

* Design: ``n`` boxes on a Latin hypercube over the prior box (Omega_m, sigma_8); the other
  parameters are fixed at the Quijote fiducial values. Alternatively an explicit list of
  cosmologies, each repeated with ``repeats`` seeds (used for the demo suite).
* Seeds: box ``i`` of a suite with seed ``S`` uses the seed
  ``SeedSequence([S, i]).generate_state(1)[0]``, so a box does not depend on which process,
  shard or run made it.
* Files: boxes are appended in index order with :func:`lssviewer.io.hdf5.append` (an atomic copy +
  rename), float32. Each catalog's provenance holds the suite seed and size, the box index, the
  design and the simulation settings. Resuming counts the catalogs already in the file (after
  checking that they belong to the same suite) and continues with the next box; a killed run loses
  at most the boxes in flight.
* Shards: ``shard=(i, n)`` makes boxes ``i, i + n, i + 2n, ...`` (each shard its own file, for
  cluster job arrays); :func:`merge_shards` joins shard files into one suite ordered by box index
  and checks that nothing is missing or duplicated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lssviewer.catalog import HaloCatalog
from lssviewer.cosmology import DEFAULT_PRIOR, Cosmology, PriorBox
from lssviewer.errors import FormatError, LssviewerError, ParameterError
from lssviewer.sim.config import DEFAULT_CONFIG, SimConfig


def latin_hypercube(n: int, seed: int, prior: PriorBox = DEFAULT_PRIOR) -> np.ndarray:
    """(n, 2) points (Omega_m, sigma_8): one point in each of n equal strata of every parameter.

    Each column is an independent random permutation of the strata with a uniform position inside
    the stratum (McKay, Beckman & Conover 1979); deterministic in (n, seed, prior).
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x4C4853])))
    lo, hi = prior.bounds().T
    unit = np.empty((n, 2))
    for d in range(2):
        unit[:, d] = (rng.permutation(n) + rng.uniform(size=n)) / n
    return lo + unit * (hi - lo)


def box_seed(suite_seed: int, index: int) -> int:
    """Seed of box ``index`` of the suite with seed ``suite_seed`` (a 32-bit unsigned integer)."""
    return int(np.random.SeedSequence([int(suite_seed), int(index)]).generate_state(1, np.uint32)[0])


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    if text is None or isinstance(text, tuple):
        shard = text
    else:
        try:
            i, n = (int(v) for v in str(text).split("/"))
        except ValueError:
            raise ParameterError(f"--shard must look like i/n (e.g. 0/8), got {text!r}") from None
        shard = (i, n)
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ParameterError(f"shard {shard[0]}/{shard[1]} is invalid: need 0 <= i < n")
    return shard


@dataclasses.dataclass(frozen=True)
class SuitePlan:
    """Everything that defines a suite (and so must match when resuming or merging).

    Attributes:
        n: number of boxes (for a list design: ``len(points) * repeats``, computed).
        seed: suite seed.
        config: simulation settings of every box.
        redshift: output redshift.
        prior: the prior box of the Latin hypercube.
        points: explicit (Omega_m, sigma_8) list instead of a Latin hypercube.
        repeats: boxes (seeds) per explicit point.
    """

    n: int
    seed: int
    config: SimConfig = DEFAULT_CONFIG
    redshift: float = 0.5
    prior: PriorBox = DEFAULT_PRIOR
    points: tuple[tuple[float, float], ...] | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        from lssviewer.sim.ics import check_seed

        check_seed(self.seed)
        if self.points is not None:
            if not self.points:
                raise ParameterError("the list of cosmologies is empty")
            if self.repeats < 1:
                raise ParameterError(f"repeats must be >= 1, got {self.repeats}")
            pts = tuple((float(om), float(s8)) for om, s8 in self.points)
            for om, s8 in pts:
                Cosmology(omega_m=om, sigma_8=s8)  # validates
            object.__setattr__(self, "points", pts)
            object.__setattr__(self, "n", len(pts) * int(self.repeats))
        if isinstance(self.n, bool) or int(self.n) != self.n or self.n < 1:
            raise ParameterError(f"the number of boxes must be >= 1, got {self.n!r}")
        object.__setattr__(self, "n", int(self.n))

    @property
    def design(self) -> str:
        return "latin_hypercube" if self.points is None else "list"

    def parameters(self) -> np.ndarray:
        """(n, 2) array of (Omega_m, sigma_8) per box index."""
        if self.points is None:
            return latin_hypercube(self.n, self.seed, self.prior)
        return np.repeat(np.asarray(self.points, dtype=float), self.repeats, axis=0)

    def cosmology(self, index: int, theta: np.ndarray | None = None) -> Cosmology:
        theta = self.parameters() if theta is None else theta
        return Cosmology(omega_m=float(theta[index, 0]), sigma_8=float(theta[index, 1]))

    def indices(self, shard: tuple[int, int] | None = None) -> list[int]:
        """Box indices made by ``shard`` (all boxes when None), in order."""
        if shard is None:
            return list(range(self.n))
        return list(range(shard[0], self.n, shard[1]))

    def identity(self) -> dict[str, Any]:
        """The entries every box of the suite records and that must agree on resume/merge."""
        ident: dict[str, Any] = {"suite_seed": self.seed, "suite_size": self.n, "design": self.design,
                                 "config": self.config.to_dict(), "redshift": self.redshift}
        if self.points is None:
            ident["prior"] = self.prior.to_dict()
        else:
            ident["points"] = [list(p) for p in self.points]
            ident["repeats"] = self.repeats
        return ident

    def check(self) -> None:
        """Reject impossible suites before any work: the halo count must be reachable at the corners."""
        from lssviewer.sim.simulate import check_inputs

        if self.points is None:
            (om0, om1), (s80, s81) = self.prior.omega_m, self.prior.sigma_8
            corners = [(om0, s80), (om0, s81), (om1, s80), (om1, s81)]
        else:
            corners = list(dict.fromkeys(self.points))
        for om, s8 in corners:
            check_inputs(Cosmology(omega_m=om, sigma_8=s8), self.seed, self.config, self.redshift)


# ---------------------------------------------------------------------------------------------------
# running


def _identity_of(catalog: HaloCatalog) -> dict[str, Any]:
    prov = catalog.provenance
    keys = ("suite_seed", "suite_size", "design", "config", "redshift", "prior", "points", "repeats")
    return {k: prov[k] for k in keys if k in prov}


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _check_existing(plan: SuitePlan, path: Path, todo: list[int]) -> int:
    """Number of boxes already in ``path`` (after checking they are this suite's, in order)."""
    from lssviewer.io import hdf5

    if not path.exists():
        return 0
    count = hdf5.count(path)
    if count == 0:
        return 0
    if count > len(todo):
        raise FormatError(f"holds {count} catalogs but this suite (or shard) has only {len(todo)} boxes", path)
    first, last = hdf5.read(path, indices=[0, count - 1])
    want = _normalise(plan.identity())
    for position, cat in ((0, first), (count - 1, last)):
        if _normalise(_identity_of(cat)) != want:
            raise FormatError("holds catalogs of a different suite (seed, size, design or settings differ); "
                              "use another output file", path)
        if cat.provenance.get("box_index") != todo[position]:
            raise FormatError(f"catalog {position} is box {cat.provenance.get('box_index')}, expected box "
                              f"{todo[position]} (wrong shard?)", path)
    return count


@dataclasses.dataclass
class _Job:
    index: int
    omega_m: float
    sigma_8: float
    seed: int
    config: SimConfig
    redshift: float
    provenance: dict[str, Any]
    device: str | None
    threads: int | None


def _run_job(job: _Job) -> tuple[int, HaloCatalog, dict[str, Any]]:
    from lssviewer.sim.simulate import simulate

    result = simulate(Cosmology(omega_m=job.omega_m, sigma_8=job.sigma_8), job.seed, job.config,
                      redshift=job.redshift, device=job.device, threads=job.threads,
                      check_halo_count=False, provenance=job.provenance)
    return job.index, result.catalog, result.summary


def _worker_init(threads: int) -> None:  # pragma: no cover - runs in child processes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (see iter_boxes)
    os.environ["LSSVIEWER_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def iter_boxes(jobs: Sequence[_Job], workers: int, threads: int) -> Iterator[tuple[int, HaloCatalog, dict]]:
    """Run the jobs (in ``workers`` processes when > 1), yielding results in job order."""
    if workers <= 1:
        for job in jobs:
            yield _run_job(job)
        return
    import multiprocessing
    import signal
    import threading

    # Ctrl-C (SIGINT) only raises a flag: the loop stops after the box in hand has been handed over
    # (and written by the caller), instead of interrupting the pool half-way through a lock (which
    # surfaced as "RuntimeError: release unlocked lock"). A second Ctrl-C interrupts at once.
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum, frame):  # noqa: ARG001
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        previous = signal.signal(signal.SIGINT, on_sigint)
    ctx = multiprocessing.get_context("spawn")  # no fork: numba/torch thread pools and CUDA
    try:
        with ctx.Pool(workers, initializer=_worker_init, initargs=(threads,)) as pool:
            for item in pool.imap(_run_job, jobs, chunksize=1):
                yield item
                if stop.is_set():
                    break
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        raise KeyboardInterrupt


@dataclasses.dataclass
class SuiteReport:
    """Outcome of :func:`run_suite` (times in seconds)."""

    path: str
    total: int
    already_done: int
    made: int
    elapsed: float
    write_time: float

    @property
    def seconds_per_box(self) -> float:
        return self.elapsed / self.made if self.made else float("nan")

    @property
    def boxes_per_hour(self) -> float:
        return 3600.0 * self.made / self.elapsed if self.made and self.elapsed > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(seconds_per_box=self.seconds_per_box, boxes_per_hour=self.boxes_per_hour)
        return d


def run_suite(plan: SuitePlan, path: str | os.PathLike[str], shard: tuple[int, int] | None = None,
              workers: int = 1, device: str | None = None, threads: int | None = None, batch: int = 1,
              progress: bool = True, on_box: Callable[[int, HaloCatalog, dict], None] | None = None,
              ) -> SuiteReport:
    """Make (or resume) the boxes of ``plan`` (or of one shard) in ``path``.

    Args:
        plan: the suite.
        path: output HDF5 file (created, or resumed when it already holds boxes of this suite).
        shard: (i, n) to make only boxes i, i + n, ...
        workers: simulation processes (each with ``threads // workers`` threads).
        device: gravity device for every box (see :func:`lssviewer.sim.simulate.resolve_device`).
        threads: total CPU threads (default: all usable cores).
        batch: boxes per append (appending copies the file; batch > 1 trades the loss on a kill,
            at most ``batch + workers - 1`` boxes, for less copying on very large suites).
        progress: show a progress bar on stderr.
        on_box: ``on_box(index, catalog, summary)`` after each box (before it is written).

    Returns:
        a :class:`SuiteReport` (throughput included).
    """
    from lssviewer.io import hdf5
    from lssviewer.sim.pm import default_threads
    from lssviewer.sim.simulate import SimulationError, resolve_device

    path = Path(path)
    shard = parse_shard(shard)
    if isinstance(workers, bool) or int(workers) < 1:
        raise ParameterError(f"workers must be >= 1, got {workers!r}")
    if int(batch) < 1:
        raise ParameterError(f"batch must be >= 1, got {batch!r}")
    workers, batch = int(workers), int(batch)
    if path.is_dir():
        raise FormatError("is a directory", path)
    plan.check()
    device = resolve_device(device)
    total_threads = int(threads or default_threads())
    per_worker = max(1, total_threads // workers)
    todo = plan.indices(shard)
    done = _check_existing(plan, path, todo)
    remaining = todo[done:]
    theta = plan.parameters()
    jobs = []
    for index in remaining:
        prov = dict(plan.identity(), box_index=index)
        if shard is not None:
            prov["shard"] = f"{shard[0]}/{shard[1]}"
        jobs.append(_Job(index=index, omega_m=float(theta[index, 0]), sigma_8=float(theta[index, 1]),
                         seed=box_seed(plan.seed, index), config=plan.config, redshift=plan.redshift,
                         provenance=prov, device=device, threads=per_worker))

    bar = None
    if progress and remaining:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), initial=done, unit="box", desc=path.name, file=sys.stderr,
                   dynamic_ncols=True)
    t_start = time.perf_counter()
    write_time = 0.0
    pending: list[HaloCatalog] = []
    made = 0
    stored = done  # boxes in the file before those in pending
    try:
        for index, catalog, summary in iter_boxes(jobs, workers, per_worker):
            if on_box is not None:
                on_box(index, catalog, summary)
            pending.append(catalog)
            made += 1
            if len(pending) >= batch or made == len(jobs):
                t0 = time.perf_counter()
                hdf5.append(pending, path, dtype="float32")
                write_time += time.perf_counter() - t0
                n_written, pending = len(pending), []  # in this order: see _flush_on_interrupt
                stored += n_written
            if bar is not None:
                elapsed = time.perf_counter() - t_start
                bar.set_postfix_str(f"{elapsed / made:.2f} s/box")
                bar.update(1)
    except SimulationError as exc:
        raise SimulationError(f"suite stopped: {exc.message}", path) from None
    except KeyboardInterrupt:  # keep the finished boxes of a partial batch, then stop
        _flush_on_interrupt(pending, path, expected_before=stored)
        raise
    finally:
        if bar is not None:
            bar.close()
    return SuiteReport(path=str(path), total=len(todo), already_done=done, made=made,
                       elapsed=time.perf_counter() - t_start, write_time=write_time)


def _flush_on_interrupt(pending: list[HaloCatalog], path: Path, expected_before: int) -> None:
    """Append the finished boxes of an interrupted run that the file does not hold yet.

    ``expected_before``: boxes in the file before ``pending``. The interrupt may have come after an append
    had completed but before ``pending`` was cleared (``expected_before`` is then behind by ``len(pending)``),
    so the file is counted rather than trusted. A failure here is reported, not raised, so the interrupt
    still ends the run (exit status 130).
    """
    from lssviewer.io import hdf5

    try:
        stored = hdf5.count(path) if path.exists() else 0
        rest = pending[max(0, stored - expected_before):]
        if rest:
            hdf5.append(rest, path, dtype="float32")
    except LssviewerError as exc:
        print(f"lssviewer suite: could not save the last {len(pending)} finished box(es): {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------
# merging


def merge_shards(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                 allow_incomplete: bool = False) -> int:
    """Join shard files of one suite into ``output``, ordered by box index; returns the box count.

    Raises FormatError when the inputs belong to different suites, hold a box twice, or (unless
    ``allow_incomplete``) miss boxes.
    """
    from lssviewer.io import hdf5

    if not inputs:
        raise ParameterError("nothing to merge: give the shard files")
    output = Path(output)
    resolved_out = output.resolve()
    by_index: dict[int, HaloCatalog] = {}
    identity = None
    for name in inputs:
        path = Path(name)
        if path.resolve() == resolved_out:
            raise ParameterError("the merged output must not be one of the inputs", path)
        if not path.exists():
            raise FormatError("no such file", path)
        for cat in hdf5.read(path):
            ident = _normalise(_identity_of(cat))
            if "suite_seed" not in ident or "box_index" not in cat.provenance:
                raise FormatError("holds a catalog that is not part of a suite (no suite provenance)", path)
            if identity is None:
                identity = ident
            elif ident != identity:
                raise FormatError("holds boxes of a different suite than the first input", path)
            index = int(cat.provenance["box_index"])
            if index in by_index:
                raise FormatError(f"box {index} appears twice among the inputs", path)
            by_index[index] = cat
    assert identity is not None
    size = int(identity["suite_size"])
    missing = sorted(set(range(size)) - set(by_index))
    if missing and not allow_incomplete:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise FormatError(f"{len(missing)} of {size} boxes are missing ({shown}); finish the shards "
                          f"or pass --allow-incomplete", output)
    catalogs = []
    for i in sorted(by_index):
        cat = by_index[i]
        prov = dict(cat.provenance)
        prov.pop("shard", None)
        catalogs.append(cat.replace(provenance=prov))
    hdf5.write(catalogs, output, dtype="float32")
    return len(catalogs)
