"""The inference worker: one thread, queued requests, superseding, cancelling, errors as signals.

Runs the real model code (lssviewer.model) on a tiny untrained checkpoint written by
tests/gui_support.py, so sampling and scans are real but fast.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_support import tiny_model_dir, toy_suite

from lssviewer.gui.worker import InferenceWorker

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("model") / "tiny", n_halos=300, default_steps=20)


def _recording_worker(qtbot, model_path) -> InferenceWorker:
    """A worker with ``model_path`` loaded whose signals are recorded in ``w.events`` as (signal, *args)."""
    w = InferenceWorker()
    w.events = []
    for name in ("started", "progress", "result", "failed", "cancelled", "finished"):
        getattr(w, name).connect(lambda *args, _n=name: w.events.append((_n, *args)))
    with qtbot.waitSignal(w.model_loaded, timeout=30_000):
        w.load_model(str(model_path))
    return w


@pytest.fixture
def worker(qtbot, model_dir):
    w = _recording_worker(qtbot, model_dir)
    yield w
    assert w.shutdown(timeout=30)


def _wait_finished(qtbot, worker, rid, timeout=60_000):
    qtbot.waitUntil(lambda: any(e[0] == "finished" and e[1] == rid for e in worker.events), timeout=timeout)
    return [e for e in worker.events if len(e) > 1 and e[1] == rid]


def test_sample_streams_states_and_matches_direct_model_call(qtbot, worker, model_dir):
    from lssviewer.model.api import load_model

    rid = worker.sample(0.3, 0.8, seed=5, steps=12)
    ev = _wait_finished(qtbot, worker, rid)
    states = [e[3] for e in ev if e[0] == "progress" and e[3][0] == "state"]
    steps = [e[3][1] for e in ev if e[0] == "progress" and e[3][0] == "step"]
    assert steps == list(range(1, 13)) or steps[-1] == 12
    assert states and states[-1][1] == 12 and states[-1][3].shape == (300, 7)
    (cat,) = next(e[3] for e in ev if e[0] == "result")
    # independent computation: the same model, loaded separately, with the same seed
    (direct,) = load_model(model_dir).sample(0.3, 0.8, seed=5, steps=12)
    np.testing.assert_allclose(cat.positions, direct.positions, rtol=1e-6, atol=1e-6)
    # streamed states are physical-unit copies: positions wrapped into the 300 Mpc/h box
    for _, _, _, arr in states:
        assert np.all((arr[:, :3] >= 0) & (arr[:, :3] <= 300.0))


def test_newer_sample_supersedes_older_ones(qtbot, worker):
    ids = [worker.sample(0.2 + 0.05 * i, 0.8, seed=1, steps=40) for i in range(4)]
    _wait_finished(qtbot, worker, ids[-1])
    results = {e[1] for e in worker.events if e[0] == "result"}
    cancelled = {e[1] for e in worker.events if e[0] == "cancelled"}
    assert ids[-1] in results
    assert set(ids[1:-1]) <= cancelled  # queued ones were dropped without running
    assert results | cancelled >= set(ids)  # each request ended one way or the other


def test_cancel_during_sample_then_keeps_working(qtbot, worker):
    rid = worker.sample(0.3, 0.8, seed=1, steps=2000, supersede=False)
    qtbot.waitUntil(lambda: any(e[0] == "progress" and e[1] == rid for e in worker.events), timeout=30_000)
    worker.cancel(rid)
    ev = _wait_finished(qtbot, worker, rid)
    assert [e[0] for e in ev if e[0] in ("result", "failed", "cancelled")] == ["cancelled"]
    rid2 = worker.sample(0.3, 0.8, seed=1, steps=5)
    assert any(e[0] == "result" for e in _wait_finished(qtbot, worker, rid2))


def test_error_becomes_one_line_message_and_worker_goes_on(qtbot, worker):
    rid = worker.sample(0.9, 0.8, seed=0, steps=5)  # outside the prior box
    ev = _wait_finished(qtbot, worker, rid)
    (msg,) = [e[3] for e in ev if e[0] == "failed"]
    assert "prior" in msg and "\n" not in msg
    boom = worker.call(lambda model, cancel: 1 / 0)
    (msg2,) = [e[3] for e in _wait_finished(qtbot, worker, boom) if e[0] == "failed"]
    assert msg2.startswith("ZeroDivisionError")
    ok = worker.call(lambda model, cancel: model.n_halos)
    assert [e[3] for e in _wait_finished(qtbot, worker, ok) if e[0] == "result"] == [300]


def test_scan_streams_points_with_summary(qtbot, worker, tmp_path):
    (cat, *_) = toy_suite(tmp_path / "s.h5", n_cosmologies=1, realisations=1, n_halos=300)
    grid = np.column_stack([np.linspace(0.1, 0.5, 5), np.full(5, 0.8)])
    rid = worker.scan(cat, grid, n_noise=2, seed=0, meta={"axis": 0, "mode": "omega_m"})
    ev = _wait_finished(qtbot, worker, rid)
    points = [e[3][1] for e in ev if e[0] == "progress" and e[3][0] == "point"]
    assert sorted(p["index"] for p in points) == list(range(5))
    out = next(e[3] for e in ev if e[0] == "result")
    # the summary is the model package's summarize_profile of exactly these points
    from lssviewer.model.likelihood import summarize_profile

    ref = summarize_profile(grid[:, 0], [p["log_likelihood"] for p in out["points"]])
    assert out["summary"]["map"] == pytest.approx(ref["map"])
    assert 0.1 <= out["summary"]["map"] <= 0.5


def test_requests_without_a_model_fail_cleanly(qtbot):
    w = InferenceWorker(loader=lambda path, device: (_ for _ in ()).throw(FileNotFoundError(2, "gone", path)))
    failed = []
    w.failed.connect(lambda rid, kind, msg: failed.append((kind, msg)))
    w.load_model("/nowhere/model")
    w.sample(0.3, 0.8)
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert failed[0] == ("load_model", "/nowhere/model: gone")
    assert failed[1][0] == "sample" and "no model is loaded" in failed[1][1]
    assert w.shutdown(timeout=10)


def test_profile_summaries_use_the_parameters_own_temperature(qtbot, tmp_path):
    """A calibration with profile temperatures: the panel's 1-D omega_m profile is summarised with omega_m's
    own T, a 2-D grid with the pooled T (the points keep the raw ELBO)."""
    from lssviewer.model.checkpoint import write_calibration
    from lssviewer.model.likelihood import summarize_profile

    model = tiny_model_dir(tmp_path / "cal", n_halos=300, default_steps=20)
    write_calibration(model, {"temperature": 40.0, "profile_temperatures": {"omega_m": 3.0}})
    w = _recording_worker(qtbot, model)
    (cat, *_) = toy_suite(tmp_path / "s.h5", n_cosmologies=1, realisations=1, n_halos=300)
    grid = np.column_stack([np.linspace(0.1, 0.5, 5), np.full(5, 0.8)])
    out = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, grid, n_noise=2, seed=0,
                                                             meta={"axis": 0, "mode": "omega_m"})) if e[0] == "result")
    ref = summarize_profile(grid[:, 0], [p["log_likelihood"] for p in out["points"]], temperature=3.0)
    assert out["summary"]["temperature"] == 3.0 and out["summary"]["interval68"] == pytest.approx(ref["interval68"])
    om, s8 = np.linspace(0.1, 0.5, 3), np.linspace(0.6, 1.0, 3)
    grid2 = np.column_stack([np.tile(om, 3), np.repeat(s8, 3)])
    out2 = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, grid2, n_noise=2, seed=0, meta={
        "axis": None, "mode": "grid", "omega_m": om.tolist(), "sigma_8": s8.tolist()})) if e[0] == "result")
    assert out2["summary"]["temperature"] == 40.0, out2["summary"]
    # a zoomed 2-D scan: stages announced before their points, the last one summarised with the pooled T
    events = _wait_finished(qtbot, w, w.scan(cat, None, n_noise=2, seed=0, meta={"truth": [0.3, 0.8]},
                                             zoom={"points": 3, "coarse": 5}))
    prog = [e[3] for e in events if e[0] == "progress"]
    assert prog[0][0] == "stage" and prog[0][1]["stage"] == 0 and prog[0][2] == 25
    assert [p[0] for p in prog[1:26]] == ["point"] * 25 and prog[26][0] == "stage" and prog[26][2] == 9
    out3 = next(e[3] for e in events if e[0] == "result")
    assert out3["summary"]["temperature"] == 40.0 and out3["meta"]["truth"] == [0.3, 0.8]
    assert out3["meta"] == out3["stages"][-1] and len(out3["points"]) == 9
    with pytest.raises(ValueError):
        w.scan(cat, None)
    # a fitted 2-D grid temperature replaces the pooled T for grids, not for profiles
    write_calibration(model, {"temperature": 40.0, "profile_temperatures": {"omega_m": 3.0}, "grid_temperature": 6.0})
    with qtbot.waitSignal(w.model_loaded, timeout=30_000):
        w.load_model(str(model))
    out4 = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, None, n_noise=2, seed=0, meta={},
                                                              zoom={"points": 3, "coarse": 3})) if e[0] == "result")
    assert out4["summary"]["temperature"] == 6.0
    out5 = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, grid, n_noise=2, seed=0,
                                                              meta={"axis": 0, "mode": "omega_m"})) if e[0] == "result")
    assert out5["summary"]["temperature"] == 3.0
    assert w.shutdown(timeout=10)


def test_grid_summaries_temper_the_network_term_of_a_box_standardised_model(qtbot, tmp_path):
    """calibration.network_temperature: the panel's zoomed 2-D grid is summarised (and its contours drawn) from
    box + (log L - box) / T_net, given back as ``tempered_log_likelihood`` beside the raw points, which carry their
    box term; 1-D profiles keep log L / T unless the calibration gives them a pair of their own."""
    from _model_helpers import tiny_config
    from _model_helpers import toy_suite as model_suite

    from lssviewer.model.checkpoint import write_calibration
    from lssviewer.model.likelihood import summarize_grid_2d, summarize_profile
    from lssviewer.model.train import train

    run = tmp_path / "box"
    suite = model_suite(16, 8, seed=2)
    train(suite, run, tiny_config(steps=2, feature_theta_degree=1, feature_per_box=True), progress=False)
    write_calibration(run, {"temperature": 2.0, "network_temperature": 5.0})
    w = _recording_worker(qtbot, run)
    cat = suite[0]
    out = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, None, n_noise=2, seed=0, meta={},
                                                             zoom={"points": 3, "coarse": 3})) if e[0] == "result")
    om, s8 = np.asarray(out["meta"]["omega_m"]), np.asarray(out["meta"]["sigma_8"])
    ll = np.array([p["log_likelihood"] for p in out["points"]]).reshape(3, 3).T  # panel order -> [om, s8]
    box = np.array([p["box_log_likelihood"] for p in out["points"]]).reshape(3, 3).T
    tempered = box + (ll - box) / 5.0
    summary = out["summary"]
    assert summary["network_temperature"] == 5.0 and summary["temperature"] == 1.0
    np.testing.assert_allclose(summary["tempered_log_likelihood"], tempered, rtol=0, atol=1e-9)
    ref = summarize_grid_2d(om, s8, tempered)
    assert summary["map"] == pytest.approx(ref["map"]) and summary["levels"] == pytest.approx(ref["levels"])
    err2 = np.array(summary["stderr_difference"])  # laid out as the summary's other 2-D arrays: [om, s8]
    assert err2.shape == (3, 3) and err2[np.unravel_index(np.argmax(ll), ll.shape)] == 0.0
    grid = np.column_stack([np.linspace(0.1, 0.5, 5), np.full(5, 0.8)])
    one = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, grid, n_noise=2, seed=0,
                                                             meta={"axis": 0, "mode": "omega_m"})) if e[0] == "result")
    assert one["summary"]["temperature"] == 2.0 and "network_temperature" not in one["summary"]
    # a profile tempering of omega_m's own: its 1-D profiles temper the network's term too
    write_calibration(run, {"temperature": 2.0, "network_temperature": 5.0,
                            "profile_tempering": {"omega_m": {"temperature": 0.8, "network_temperature": 3.0}}})
    with qtbot.waitSignal(w.model_loaded, timeout=30_000):
        w.load_model(str(run))
    two = next(e[3] for e in _wait_finished(qtbot, w, w.scan(cat, grid, n_noise=2, seed=0,
                                                             meta={"axis": 0, "mode": "omega_m"})) if e[0] == "result")
    ll1 = np.array([p["log_likelihood"] for p in two["points"]])
    box1 = np.array([p["box_log_likelihood"] for p in two["points"]])
    tempered1 = (box1 + (ll1 - box1) / 3.0) / 0.8
    assert two["summary"]["network_temperature"] == 3.0 and two["summary"]["temperature"] == 0.8
    np.testing.assert_allclose(two["summary"]["tempered_log_likelihood"], tempered1, rtol=0, atol=1e-9)
    ref1 = summarize_profile(grid[:, 0], tempered1)
    assert two["summary"]["interval68"] == pytest.approx(ref1["interval68"])
    # the error bars of log L - max come from the points' noise draws (common to all points)
    draws = np.array([p["draws"] for p in two["points"]])
    assert draws.shape == (5, 2)
    err = two["summary"]["stderr_difference"]
    top = int(np.argmax(ll1))
    # 2 strata: the collapsed estimate is |(a - a_top) - (b - b_top)| / 2 per point
    expected = np.abs((draws[:, 0] - draws[top, 0]) - (draws[:, 1] - draws[top, 1])) / 2
    np.testing.assert_allclose(err, expected, atol=1e-9)
    assert err[top] == 0.0
    assert w.shutdown(timeout=10)
