"""Simulation suites: Latin hypercube, seeds, resume after an interruption or a kill, shards and merge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lssviewer.cosmology import Cosmology, PriorBox
from lssviewer.errors import FormatError, ParameterError
from lssviewer.io import hdf5
from lssviewer.sim import SimConfig, simulate
from lssviewer.sim.suite import SuitePlan, box_seed, latin_hypercube, merge_shards, parse_shard, run_suite

# A tiny configuration (16^3 particles in 40 Mpc/h, ~0.1 s per box) that still forms >= 2 halos of
# >= 8 particles everywhere in the prior (Watson 2013 expects >= 7 at the poorest corner).
TINY = SimConfig(box_size=40.0, particles=16, n_halos=2, min_particles=8)
TINY_ARGS = ["--box-size", "40", "--particles", "16", "--n-halos", "2", "--min-particles", "8"]


def _same(a, b):
    return len(a) == len(b) and all(x.equals(y) and x.provenance == y.provenance for x, y in zip(a, b, strict=True))


def test_latin_hypercube_fills_every_stratum_once():
    prior = PriorBox()
    pts = latin_hypercube(50, seed=3, prior=prior)
    for d, (lo, hi) in enumerate(prior.bounds()):
        strata = np.floor((pts[:, d] - lo) / (hi - lo) * 50).astype(int)
        assert sorted(strata) == list(range(50))
    assert np.array_equal(pts, latin_hypercube(50, seed=3, prior=prior))
    assert not np.allclose(pts, latin_hypercube(50, seed=4, prior=prior))


def test_box_seeds_are_deterministic_and_distinct():
    seeds = [box_seed(7, i) for i in range(200)]
    assert seeds == [box_seed(7, i) for i in range(200)]
    assert len(set(seeds)) == 200
    assert box_seed(8, 0) != box_seed(7, 0)


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "1", "a/b", "-1/3"):
        with pytest.raises(ParameterError):
            parse_shard(bad)


def test_interrupted_suite_resumes_identically(tmp_path):
    plan = SuitePlan(n=6, seed=11, config=TINY)
    full = tmp_path / "full.h5"
    run_suite(plan, full, progress=False)

    part = tmp_path / "part.h5"

    def stop_after_three(index, catalog, summary):
        if index == 3:
            raise KeyboardInterrupt  # as if killed while box 3 was in flight

    with pytest.raises(KeyboardInterrupt):
        run_suite(plan, part, progress=False, on_box=stop_after_three)
    assert hdf5.count(part) == 3  # nothing lost but the box in flight
    report = run_suite(plan, part, progress=False)
    assert (report.already_done, report.made) == (3, 3)
    assert _same(hdf5.read(full), hdf5.read(part))
    # re-running a finished suite does nothing
    assert run_suite(plan, part, progress=False).made == 0
    # each box is what simulate() gives for its cosmology and derived seed
    cat = hdf5.read(full, indices=[4])[0]
    theta = plan.parameters()[4]
    direct, _ = simulate(Cosmology(omega_m=theta[0], sigma_8=theta[1]), box_seed(11, 4), TINY)
    np.testing.assert_allclose(cat.positions, direct.positions, rtol=0, atol=1e-4)  # float32 storage
    np.testing.assert_array_equal(cat.masses.astype(np.float32), direct.masses.astype(np.float32))


def test_interrupt_keeps_the_finished_boxes_of_a_partial_batch(tmp_path):
    """With --batch > 1 an interrupt writes the finished boxes not yet appended (only the box in flight is lost)."""
    plan = SuitePlan(n=6, seed=11, config=TINY)
    part = tmp_path / "part.h5"

    def stop_at_three(index, catalog, summary):
        if index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(plan, part, progress=False, batch=2, on_box=stop_at_three)
    assert hdf5.count(part) == 3  # boxes 0-1 (a full batch) and box 2 (flushed on the interrupt)
    assert run_suite(plan, part, progress=False, batch=2).made == 3


def test_resume_refuses_a_different_suite(tmp_path):
    path = tmp_path / "s.h5"
    run_suite(SuitePlan(n=2, seed=1, config=TINY), path, progress=False)
    with pytest.raises(FormatError, match="different suite"):
        run_suite(SuitePlan(n=2, seed=2, config=TINY), path, progress=False)
    with pytest.raises(FormatError, match="different suite"):
        run_suite(SuitePlan(n=2, seed=1, config=TINY.replace(steps=5)), path, progress=False)


def test_shards_merge_to_the_full_suite(tmp_path):
    plan = SuitePlan(n=5, seed=4, config=TINY)
    run_suite(plan, tmp_path / "full.h5", progress=False)
    run_suite(plan, tmp_path / "a.h5", shard=(0, 2), progress=False)
    run_suite(plan, tmp_path / "b.h5", shard=(1, 2), progress=False)
    assert [c.provenance["box_index"] for c in hdf5.read(tmp_path / "b.h5")] == [1, 3]
    # a shard file cannot be resumed as another shard
    with pytest.raises(FormatError, match="wrong shard"):
        run_suite(plan, tmp_path / "b.h5", shard=(0, 2), progress=False)
    assert merge_shards([tmp_path / "b.h5", tmp_path / "a.h5"], tmp_path / "m.h5") == 5
    full, merged = hdf5.read(tmp_path / "full.h5"), hdf5.read(tmp_path / "m.h5")
    assert all(x.equals(y) for x, y in zip(full, merged, strict=True))
    assert [c.provenance["box_index"] for c in merged] == list(range(5))
    with pytest.raises(FormatError, match="missing"):
        merge_shards([tmp_path / "a.h5"], tmp_path / "m2.h5")
    assert merge_shards([tmp_path / "a.h5"], tmp_path / "m2.h5", allow_incomplete=True) == 3
    with pytest.raises(FormatError, match="twice"):
        merge_shards([tmp_path / "a.h5", tmp_path / "a.h5"], tmp_path / "m3.h5")
    run_suite(SuitePlan(n=5, seed=5, config=TINY), tmp_path / "other.h5", shard=(1, 2), progress=False)
    with pytest.raises(FormatError, match="different suite"):
        merge_shards([tmp_path / "a.h5", tmp_path / "other.h5"], tmp_path / "m4.h5")


def test_list_design_and_workers(tmp_path):
    plan = SuitePlan(n=0, seed=2, config=TINY, points=((0.3175, 0.834), (0.2, 0.7)), repeats=2)
    assert plan.n == 4
    np.testing.assert_allclose(plan.parameters(), [[0.3175, 0.834]] * 2 + [[0.2, 0.7]] * 2)
    serial = tmp_path / "serial.h5"
    parallel = tmp_path / "parallel.h5"
    run_suite(plan, serial, progress=False)
    report = run_suite(plan, parallel, workers=2, threads=2, progress=False)
    assert report.made == 4 and report.seconds_per_box > 0
    assert _same(hdf5.read(serial), hdf5.read(parallel))  # processes do not change a box


def test_bad_suite_input_fails_before_work(tmp_path):
    with pytest.raises(ParameterError):
        SuitePlan(n=0, seed=1)
    with pytest.raises(ParameterError):
        SuitePlan(n=3, seed=-1)
    with pytest.raises(ParameterError):
        SuitePlan(n=1, seed=1, points=((0.0, 0.8),))
    # impossible halo count at the poorest corner of the prior: refused before any box is made
    with pytest.raises(ParameterError, match="expected to hold only"):
        run_suite(SuitePlan(n=2, seed=1, config=TINY.replace(n_halos=200)), tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_hundred_box_suite_killed_resumed_and_merged(tmp_path):
    # The acceptance test at small scale: 100 boxes in 2 shards; shard 0 runs as a real
    # process that is SIGKILLed mid-run, then resumed; the merged suite holds all 100 boxes, in order,
    # and the boxes around the kill point are exactly what an uninterrupted run makes.
    env = dict(os.environ, LSSVIEWER_THREADS="1")
    args = [sys.executable, "-m", "lssviewer", "suite", "-n", "100", "--seed", "21", *TINY_ARGS,
            "--no-progress", "--device", "cpu"]
    shard0 = tmp_path / "s0.h5"
    proc = subprocess.Popen([*args, "-o", str(shard0), "--shard", "0/2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    killed_at = 0
    while time.time() < deadline:
        if shard0.exists():
            try:
                killed_at = hdf5.count(shard0)
            except FormatError:  # pragma: no cover - the rename is atomic, but be safe
                killed_at = 0
            if killed_at >= 5:
                break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = hdf5.count(shard0)
    assert 5 <= done_before < 50, "the kill should land mid-run"
    plan = SuitePlan(n=100, seed=21, config=TINY)
    report = run_suite(plan, shard0, shard=(0, 2), progress=False, threads=1)
    assert report.already_done == done_before and report.made == 50 - done_before
    run_suite(plan, tmp_path / "s1.h5", shard=(1, 2), progress=False, threads=1)
    assert merge_shards([tmp_path / "s0.h5", tmp_path / "s1.h5"], tmp_path / "suite.h5") == 100
    merged = hdf5.read(tmp_path / "suite.h5")
    assert [c.provenance["box_index"] for c in merged] == list(range(100))
    around = [2 * (done_before - 1), 2 * done_before]  # last box before the kill, first after
    reference = tmp_path / "ref.h5"
    for i in around:
        theta = plan.parameters()[i]
        cat, _ = simulate(Cosmology(omega_m=theta[0], sigma_8=theta[1]), box_seed(21, i), TINY, threads=1)
        hdf5.write([cat], reference, dtype="float32")
        assert merged[i].equals(hdf5.read(reference)[0])


def test_interrupt_flush_does_not_duplicate_boxes_already_appended(tmp_path):
    """An interrupt just after an append completed (before the batch was cleared) must not write it twice."""
    from lssviewer.sim.suite import _flush_on_interrupt

    plan = SuitePlan(n=4, seed=11, config=TINY)
    path = tmp_path / "s.h5"
    run_suite(plan, path, progress=False)
    boxes = hdf5.read(path)
    part = tmp_path / "part.h5"
    hdf5.append(boxes[:2], part, dtype="float32")  # boxes 0-1 written, but still 'pending' for the run
    _flush_on_interrupt(boxes[:2], part, expected_before=0)
    assert hdf5.count(part) == 2
    _flush_on_interrupt(boxes[2:3], part, expected_before=2)  # a genuinely unwritten box
    assert [c.provenance["box_index"] for c in hdf5.read(part)] == [0, 1, 2]
