"""The maintenance tools of the built-in model (tools/): suite union and temperature refit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_catalog

from lssviewer.io import hdf5
from lssviewer.model.checkpoint import write_calibration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import refit_temperature  # noqa: E402
import union_suite  # noqa: E402


def _suite_box(seed: int, index: int, suite_seed: int):
    cat = make_catalog(n=20, seed=seed)
    return cat.replace(provenance={"suite_seed": suite_seed, "box_index": index, "seed": seed})


def test_union_is_the_same_from_packed_or_raw_new_boxes_and_refuses_duplicates(tmp_path):
    old, new = tmp_path / "old.h5", tmp_path / "new.h5"
    hdf5.write([_suite_box(i, i, 1) for i in range(3)], old, dtype="float32")
    hdf5.write([_suite_box(10 + i, i, 2) for i in range(2)], new, dtype="float32")
    assert union_suite.main(["--old", str(old), "--new", str(new), "--new-packed", str(tmp_path / "np.h5"),
                             "--union", str(tmp_path / "u1.h5")]) == 0
    assert union_suite.main(["--old", str(old), "--new", str(tmp_path / "np.h5"), "--union",
                             str(tmp_path / "u2.h5")]) == 0
    u1, u2 = hdf5.read(tmp_path / "u1.h5"), hdf5.read(tmp_path / "u2.h5")
    assert len(u1) == 5 and all(np.array_equal(a.positions, b.positions) and np.array_equal(a.velocities, b.velocities)
                                for a, b in zip(u1, u2, strict=True))
    with pytest.raises(SystemExit, match="already in"):
        union_suite.main(["--old", str(old), "--new", str(old), "--union", str(tmp_path / "u3.h5")])


def test_refit_temperature_recovers_a_known_over_confidence(tmp_path):
    """Deficits of profiles over-confident by T = 1.5 (truth deficit = 1.5 x chi2_1 / 2): the refit finds
    T within ~2 sd of its sampling error (600 deficits: sd of the 68.3th-percentile T ~0.12) and its
    cross-validated coverage, averaged over splits, is 68.3 % within 0.04 (~2 sd)."""
    rng = np.random.default_rng(3)
    n, n_cal = 240, 60  # the card's coverage boxes and its calibration boxes (kept per box) are pooled

    def run(indices):
        return {"points": 30, "n_noise": 16, "indices": indices,
                "per_box": {f"deficit_nats_{p}": list(0.75 * rng.chisquare(1, len(indices)))
                            for p in ("omega_m", "sigma_8")}}

    card = {"coverage": run(list(range(n))), "calibration": run(list(range(n, n + n_cal)))}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2}))
    assert refit_temperature.main(["--model", str(model), "--coverage", str(path), "--splits", "200", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert cal["n_boxes"] == n + n_cal and cal["indices"] == list(range(n + n_cal))
    assert cal["temperature"] == pytest.approx(1.5, abs=0.25)
    for p in ("omega_m", "sigma_8"):
        assert cal["cross_validation"][p]["coverage68"] == pytest.approx(0.683, abs=0.04)
        # over-confident before the refit: P(1.5 chi2_1 / 2 <= 0.5) = P(chi2_1 <= 0.667) = 0.586 (sd 0.028)
        assert cal["raw_coverage68"][p] == pytest.approx(0.586, abs=0.06)



def test_refit_pooled_temperature_from_1d_profiles(tmp_path):
    """--coverage takes a bench_profiles_1d.py result: each box's raw deficit is read off its profiles (Gaussian
    profiles whose peaks scatter sqrt(1.5) times their width about the truth: deficits 1.5 x chi2_1 / 2, T = 1.5;
    300 boxes x 2 parameters: sd of the fitted T ~0.1, allowed 0.25). A profiles file of another model is
    refused."""
    rng = np.random.default_rng(5)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2}))
    boxes = {}
    for k in range(300):
        truth = [rng.uniform(0.2, 0.4), rng.uniform(0.7, 0.9)]
        entry = {"truth": truth}
        for i, (p, lo, hi, sd) in enumerate((("omega_m", 0.1, 0.5, 0.03), ("sigma_8", 0.6, 1.0, 0.025))):
            x = np.linspace(lo, hi, 30)
            peak = truth[i] + np.sqrt(1.5) * sd * rng.normal()
            entry[p] = {"grid": x.tolist(), "log_likelihood": (-0.5 * ((x - peak) / sd) ** 2).tolist()}
        boxes[str(1000 + k)] = entry
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"model": str(model), "points": 30, "n_noise": 16, "boxes": boxes}))
    assert refit_temperature.main(["--model", str(model), "--coverage", str(path), "--splits", "50", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert cal["n_boxes"] == 300 and cal["indices"] == list(range(1000, 1300))
    assert cal["temperature"] == pytest.approx(1.5, abs=0.25)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": str(tmp_path / "elsewhere"), "points": 30, "n_noise": 16, "boxes": boxes}))
    with pytest.raises(SystemExit, match="not"):
        refit_temperature.main(["--model", str(model), "--coverage", str(other)])
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps({"model": str(model), "points": 30, "n_noise": 16, "boxes": boxes,
                                 "selection": "fresh simulations no model saw (--fresh)"}))
    with pytest.raises(SystemExit, match="fresh simulations"):
        refit_temperature.main(["--model", str(model), "--coverage", str(fresh)])
    grids = tmp_path / "grids.json"  # a bench_coverage_2d.py result is not a profiles file
    grids.write_text(json.dumps({"model": str(model), "points": 11, "n_noise": 16,
                                 "boxes": {"3": {"truth": [0.3, 0.8], "omega_m": [0.2, 0.3], "sigma_8": [0.7, 0.8]}}}))
    with pytest.raises(SystemExit, match="box 3"):
        refit_temperature.main(["--model", str(model), "--coverage", str(grids)])


def test_refit_temperature_reports_each_parameters_own_temperature(tmp_path):
    """Omega_m profiles over-confident by T = 1.5, sigma_8 under-confident (T = 0.7), 400 boxes: each
    parameter's own temperature is recovered (sd of the 68.3th-percentile fit 0.144 and 0.068 at 400 deficits,
    from 4,000 simulated seeds; 3 sd allowed) and its cross-validated coverage is 68.3 % within 0.04, while the
    pooled temperature leaves Omega_m under-covered and sigma_8 over-covered."""
    rng = np.random.default_rng(5)
    n = 400
    true_t = {"omega_m": 1.5, "sigma_8": 0.7}
    run = {"points": 30, "n_noise": 16, "indices": list(range(n)),
           "per_box": {f"deficit_nats_{p}": list(0.5 * t * rng.chisquare(1, n)) for p, t in true_t.items()}}
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"coverage": run}))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2}))
    assert refit_temperature.main(["--model", str(model), "--coverage", str(path), "--splits", "200", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert "profile_temperatures" not in cal  # measured only, unless asked for
    # a 1-D profile tempering (fitted on its own boxes) survives a pooled refit, not a --per-parameter one, which
    # states what 1-D profiles use
    pairs = {"omega_m": {"temperature": 0.9, "network_temperature": 8.0}}
    write_calibration(model, {**cal, "profile_tempering": pairs, "profile_calibration": {"n_boxes": 50}})
    assert refit_temperature.main(["--model", str(model), "--coverage", str(path), "--splits", "5", "--write"]) == 0
    assert json.loads((model / "model.json").read_text())["calibration"]["profile_tempering"] == pairs
    assert refit_temperature.main(["--model", str(model), "--coverage", str(path), "--splits", "200", "--write",
                                   "--per-parameter"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert "profile_tempering" not in cal and "profile_calibration" not in cal
    assert cal["profile_temperatures"] == {p: cal["per_parameter"][p]["temperature"] for p in true_t}
    for p, t in true_t.items():
        own = cal["per_parameter"][p]
        assert own["temperature"] == pytest.approx(t, abs=0.43 if t > 1 else 0.2)
        assert own["cross_validation"]["coverage68"] == pytest.approx(0.683, abs=0.04)
    # pooled T ~1.03: P(chi2_1 <= 1.03 / 1.5) = 0.59 and P(chi2_1 <= 1.03 / 0.7) = 0.77
    pooled = cal["cross_validation"]
    assert pooled["omega_m"]["coverage68"] < 0.64 and pooled["sigma_8"]["coverage68"] > 0.73


def test_sample_clustering_reads_the_nearest_bins_and_names_a_missing_cosmology(tmp_path, capsys):
    """``at`` averages over catalogs and reads the bins whose centres are nearest to the requested separations;
    the tool prints the simulations' row and one row per model; a cosmology absent from the file is a one-line
    error naming the file."""
    from types import SimpleNamespace

    import sample_clustering
    from _model_helpers import tiny_config, toy_suite

    from lssviewer.model.train import train

    result = SimpleNamespace(centers=np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0]),
                             values={"": np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]])})
    assert sample_clustering.at(result, (2.1, 6.2, 10.2)) == [2.0, 4.0, 6.0]  # centres 3, 7, 11

    sims = [make_catalog(n=400, seed=s, om=0.3, s8=0.8) for s in range(3)] + [make_catalog(n=60, seed=9, om=0.2)]
    fresh = tmp_path / "fresh.h5"
    hdf5.write(sims, fresh)
    model = tmp_path / "model"
    train(toy_suite(8, 20, seed=0), model, tiny_config(), progress=False)
    sample_clustering.main(["--models", str(model), "--fresh", str(fresh), "--cosmology", "0.3,0.8", "--n", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert "3 simulations, 2 samples (seed 2)" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["simulations", str(model)]
    # the simulations' row: xi and v12 of the three boxes at that cosmology, computed here directly (the default
    # separation bins depend on the box alone, so the other sets do not change them)
    from lssviewer.stats import compute

    printed = [float(v) for v in lines[2].split()[1:] if v != "/"]
    direct = sample_clustering.at(compute("xi", sims[:3]), sample_clustering.XI_AT)
    direct += sample_clustering.at(compute("pairwise", sims[:3]), sample_clustering.V12_AT)
    assert np.isfinite(direct).all()
    np.testing.assert_allclose(printed[:3], direct[:3], atol=0.051)  # printed to 0.1
    np.testing.assert_allclose(printed[3:6], direct[3:], atol=0.51)  # printed to 1 km/s
    # close pairs per box, against a brute-force minimum-image count over all pairs
    seps = []
    for c in sims[:3]:
        d = c.positions[:, None, :] - c.positions[None, :, :]
        d -= c.box_size * np.round(d / c.box_size)
        r = np.linalg.norm(d, axis=-1)[np.triu_indices(len(c), 1)]
        seps.append(r)
    closest = min(r.min() for r in seps)
    assert f"closest pair {closest:.2f} Mpc/h" in lines[0]
    n_close = np.mean([(r < sample_clustering.CLOSE).sum() for r in seps])
    np.testing.assert_allclose(printed[6:], [n_close, 0.0], atol=0.0051)  # printed to 0.01
    sample_clustering.main(["--models", str(model), "--fresh", str(fresh), "--cosmology", "all", "--n", "1"])
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith("(")]
    assert [h.split(";")[0] for h in heads] == ["(0.2, 0.8)", "(0.3, 0.8)"]
    assert "(seed 2)" in heads[0] and "(seed 3)" in heads[1]
    with pytest.raises(SystemExit, match="fresh.h5: no simulation at omega_m=0.45, sigma_8=0.65"):
        sample_clustering.main(["--models", str(model), "--fresh", str(fresh), "--cosmology", "0.45,0.65"])


def test_probe_steps_sizes_the_run_to_the_budget(tmp_path):
    """100 steps in 5 s (steps 100 -> 200) = 20 steps/s: 400 s x 0.9 -> 7,200 steps; capped; at least 1,000."""
    import probe_steps

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,wall_s,lr\n50,3.0,1e-5\n100,5.0,1e-5\n150,7.5,1e-5\n200,10.0,1e-5\n")
    assert probe_steps.steps_for(str(metrics), 400, 12000) == 7200
    assert probe_steps.steps_for(str(metrics), 400, 6000) == 6000
    assert probe_steps.steps_for(str(metrics), 10, 12000) == 1000


def test_refit_grid_temperature_from_zoomed_grids(tmp_path):
    """400 boxes whose 2-D log L is an exact Gaussian with its peak scattered sqrt(3) times wider than its own
    width in both (independent) parameters: truth deficit 3 chi2_2 / 2 in 2-D and 3 chi2_1 / 2 in each profile,
    so both fits (contours, profile intervals) and the grid temperature (their maximum) are 3, within 3 sd of the
    sampling error (the 68.3th percentile of 400 exponential deficits: relative sd 9 % / sqrt(2) -> 0.19); the
    cross-validated coverage of contours and profile intervals is 68.3 % within 0.04 (~2 sd of 200-box halves);
    writing it keeps the pooled and profile temperatures, and a pooled refit keeps it."""
    rng = np.random.default_rng(11)
    sd = np.array([0.01, 0.008])
    boxes = {}
    for k in range(400):
        truth = np.array([rng.uniform(0.2, 0.4), rng.uniform(0.7, 0.9)])
        peak = truth + np.sqrt(3.0) * sd * rng.normal(size=2)
        om, s8 = np.linspace(peak[0] - 8 * sd[0], peak[0] + 8 * sd[0], 11), np.linspace(
            peak[1] - 8 * sd[1], peak[1] + 8 * sd[1], 11)
        a, b = np.meshgrid(om, s8, indexing="ij")
        ll = -0.5 * (((a - peak[0]) / sd[0]) ** 2 + ((b - peak[1]) / sd[1]) ** 2)
        boxes[str(k)] = {"truth": truth.tolist(), "omega_m": om.tolist(), "sigma_8": s8.tolist(),
                         "log_likelihood": ll.tolist()}
    model = tmp_path / "model"
    model.mkdir()
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"model": str(model), "points": 11, "coarse": 7, "boxes": boxes}))
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2, "calibration": {
        "temperature": 1.2, "profile_temperatures": {"omega_m": 1.5, "sigma_8": 0.9}}}))
    (model / "card.json").write_text(json.dumps({"name": "m", "calibration": {"temperature": 1.2}}))
    assert refit_temperature.main(["--model", str(model), "--grid", str(path), "--splits", "100", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    card = json.loads((model / "card.json").read_text())
    assert card["calibration"]["grid_temperature"] == cal["grid_temperature"]
    assert card["calibration"]["temperature"] == 1.2
    assert card["coverage_2d"] == {"source": str(path)}
    assert cal["temperature"] == 1.2 and cal["profile_temperatures"] == {"omega_m": 1.5, "sigma_8": 0.9}
    assert cal["grid_temperature"] == pytest.approx(3.0, abs=0.57)
    g = cal["grid_calibration"]
    assert g["n_boxes"] == 400 and g["truth_outside_grid"] == 0
    assert g["contour_temperature"] == pytest.approx(3.0, abs=0.57) and g["profile_temperature"] == pytest.approx(
        3.0, abs=0.57)
    assert cal["grid_temperature"] == pytest.approx(max(g["contour_temperature"], g["profile_temperature"]), rel=1e-3)
    assert g["cross_validation"]["coverage68"] == pytest.approx(0.683, abs=0.04)
    for p in ("omega_m", "sigma_8"):
        assert g["cross_validation"]["profile_coverage68"][p] == pytest.approx(0.683, abs=0.04)
    # raw: P(3 chi2_2 / 2 <= 1.148) = 1 - exp(-1.148 / 3) = 0.318 (sd 0.023)
    assert g["raw_coverage68"] == pytest.approx(0.318, abs=0.07)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"coverage": {"points": 30, "n_noise": 16, "indices": list(range(20)), "per_box": {
        f"deficit_nats_{p}": list(0.5 * rng.chisquare(1, 20)) for p in ("omega_m", "sigma_8")}}}))
    assert refit_temperature.main(["--model", str(model), "--coverage", str(card), "--splits", "20", "--write"]) == 0
    cal2 = json.loads((model / "model.json").read_text())["calibration"]
    assert cal2["grid_temperature"] == cal["grid_temperature"] and cal2["temperature"] != 1.2
    with pytest.raises(SystemExit):
        refit_temperature.main(["--model", str(model)])


def test_refit_network_temperature_from_zoomed_grids_with_box_terms(tmp_path):
    """100 boxes whose log L is a calibrated box-statistics Gaussian (width 0.03 / 0.024, its peak scattered by that
    much about the truth) plus a network Gaussian 4x too sharp (width 0.005 / 0.004, peak scattered sqrt(4) times
    wider). [box + network / 4] / 1 is then the exact likelihood of the two independent estimates: of the
    calibrated family [box + network / T_net] / T(T_net) it has the smallest contours (inverse-variance weights
    are optimal). The network dominates, so the refit pins the network term's weight 1 / (T T_net) (true 0.25;
    seeds 0-5 gave 0.24-0.27: allowed 0.2-0.3) but not the box term's 1 / T (0.7-1.6), its contours are smaller
    than the best calibration of the whole log L (T_net = 1; seeds 0-5: 7-17 %), and the cross-validated 68 %
    coverage is near 68 % (seeds 0-5: 0.65-0.67, a little low since the sharpest fit is chosen; 50-box halves, sd
    0.066 per split: allowed 0.60-0.76). 1-D profiles of other boxes (the same two terms along one parameter) are
    reported under that T_net; boxes shared with the grids are refused."""
    rng = np.random.default_rng(5)
    boxes = _two_term_grids(rng, range(100))
    profiles = _two_term_profiles(rng, range(1000, 1060))  # the same two terms along one parameter
    model = tmp_path / "model"
    model.mkdir()
    path, prof_path = tmp_path / "grid.json", tmp_path / "profiles.json"
    path.write_text(json.dumps({"model": str(model), "points": 11, "coarse": 7, "boxes": boxes}))
    prof_path.write_text(json.dumps({"model": str(model), "points": 30, "boxes": profiles}))
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2, "calibration": {
        "temperature": 1.2, "grid_temperature": 3.0}}))
    assert refit_temperature.main(["--model", str(model), "--grid", str(path), "--network", "--profiles",
                                   str(prof_path), "--splits", "50", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert cal["temperature"] == 1.2  # kept
    g = cal["grid_calibration"]
    assert 0.2 <= 1.0 / (cal["grid_temperature"] * cal["network_temperature"]) <= 0.3
    assert g["median_area68"]["chosen"] < g["median_area68"]["network_untempered"]
    assert 0.60 <= g["cross_validation"]["coverage68"] <= 0.76
    # a plain grid refit replaces the pair (its T is fitted for the whole log L)
    assert refit_temperature.main(["--model", str(model), "--grid", str(path), "--splits", "5", "--write"]) == 0
    plain = json.loads((model / "model.json").read_text())["calibration"]
    assert "network_temperature" not in plain and plain["grid_temperature"] != cal["grid_temperature"]
    one = g["profiles_1d"]
    assert one["n_boxes"] == 60
    for p in ("omega_m", "sigma_8"):
        assert 0.45 <= one[p]["network_coverage68"] <= 0.9  # 60 boxes: sd 0.06 about 0.68
        assert one[p]["raw_coverage68"] < one[p]["network_coverage68"]
    # the grids must carry the box term; profiles must not share the grids' boxes
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": str(model), "points": 11, "coarse": 7, "boxes": {
        k: {kk: vv for kk, vv in v.items() if kk != "box_log_likelihood"} for k, v in boxes.items()}}))
    with pytest.raises(SystemExit, match="box_log_likelihood"):
        refit_temperature.main(["--model", str(model), "--grid", str(bad), "--network"])
    few = tmp_path / "few.json"
    few.write_text(json.dumps({"model": str(model), "points": 11, "coarse": 7,
                               "boxes": {k: boxes[k] for k in list(boxes)[:15]}}))
    with pytest.raises(SystemExit, match="cannot fit a network temperature on 7 boxes"):  # a half of 15
        refit_temperature.main(["--model", str(model), "--grid", str(few), "--network", "--splits", "2"])
    with pytest.raises(SystemExit, match="--profiles needs --network"):
        refit_temperature.main(["--model", str(model), "--grid", str(path), "--profiles", str(prof_path)])
    prof_path.write_text(json.dumps({"model": str(model), "points": 30, "boxes": {"0": profiles["1000"]}}))
    with pytest.raises(SystemExit, match="shares boxes"):
        refit_temperature.main(["--model", str(model), "--grid", str(path), "--network", "--profiles",
                                str(prof_path), "--splits", "2"])


def _two_term_grids(rng: np.random.Generator, keys) -> dict:
    """bench_coverage_2d-style boxes whose 2-D log L is a calibrated box-statistics Gaussian (width 0.03 / 0.024,
    peak scattered by that much about the truth) plus a network Gaussian 4x too sharp (width 0.005 / 0.004, peak
    scattered sqrt(4) times wider), with the box term per point: box + network / 4 is the exact likelihood."""
    sd_b, sd_n, t_true = np.array([0.03, 0.024]), np.array([0.005, 0.004]), 4.0
    boxes = {}
    for k in keys:
        truth = np.array([rng.uniform(0.2, 0.4), rng.uniform(0.7, 0.9)])
        mb = truth + sd_b * rng.normal(size=2)
        mn = truth + np.sqrt(t_true) * sd_n * rng.normal(size=2)
        sd_t = 1.0 / np.sqrt(1 / sd_b**2 + 1 / (t_true * sd_n**2))
        peak = (mb / sd_b**2 + mn / (t_true * sd_n**2)) * sd_t**2
        om, s8 = (np.linspace(peak[i] - 8 * sd_t[i], peak[i] + 8 * sd_t[i], 11) for i in range(2))
        a, b = np.meshgrid(om, s8, indexing="ij")
        box = -0.5 * (((a - mb[0]) / sd_b[0]) ** 2 + ((b - mb[1]) / sd_b[1]) ** 2)
        net = -0.5 * (((a - mn[0]) / sd_n[0]) ** 2 + ((b - mn[1]) / sd_n[1]) ** 2)
        boxes[str(k)] = {"truth": truth.tolist(), "omega_m": om.tolist(), "sigma_8": s8.tolist(),
                         "log_likelihood": (box + net).tolist(), "box_log_likelihood": box.tolist()}
    return boxes


def test_refit_grid_temperature_pools_files_and_keeps_a_given_network_temperature(tmp_path):
    """--grid takes several results and pools their boxes: two files of 100 boxes give the fit of one file
    holding all 200. With --network-temperature 4 (the true T_net of these boxes, :func:`_two_term_grids`) T_net
    is kept and only T fitted: [box + network / 4] is the exact likelihood, so T is 1 within the sampling error of
    a 68th percentile of 200 boxes (relative sd ~7 %: allowed 0.8-1.25). The boxes T_net was chosen on are carried
    over from the stored fit that chose it (the 1-D profiles' tests avoid those, not the T fit's); files that share
    a box or were scanned alike differently are refused."""
    rng = np.random.default_rng(8)
    boxes = _two_term_grids(rng, range(200))
    model = tmp_path / "model"
    model.mkdir()
    head = {"model": str(model), "suite": "s.h5", "points": 11, "coarse": 7, "window_network_temperature": 10.0}
    one, a, b = tmp_path / "all.json", tmp_path / "a.json", tmp_path / "b.json"
    one.write_text(json.dumps({**head, "boxes": boxes}))
    a.write_text(json.dumps({**head, "boxes": {k: boxes[k] for k in list(boxes)[:100]}}))
    b.write_text(json.dumps({**head, "boxes": {k: boxes[k] for k in list(boxes)[100:]}}))
    stored = {"temperature": 1.2, "network_temperature": 4.0, "grid_temperature": 1.5,
              "grid_calibration": {"indices": [7, 8, 9]}}
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2,
                                                  "calibration": stored}))
    args = ["--model", str(model), "--network", "--network-temperature", "4", "--splits", "20"]
    assert refit_temperature.main([*args, "--grid", str(a), str(b), "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    g = cal["grid_calibration"]
    assert cal["network_temperature"] == 4.0 and 0.8 <= cal["grid_temperature"] <= 1.25
    assert g["n_boxes"] == 200 and sorted(g["indices"]) == list(range(200))
    assert g["source"] == f"{a}, {b}" and g["network_temperature_indices"] == [7, 8, 9]
    assert "--network-temperature" in g["method"]
    pooled = dict(cal)
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2,
                                                  "calibration": stored}))
    assert refit_temperature.main([*args, "--grid", str(one), "--write"]) == 0
    single = json.loads((model / "model.json").read_text())["calibration"]
    assert single["grid_temperature"] == pooled["grid_temperature"]
    assert single["grid_calibration"]["contour_temperature"] == g["contour_temperature"]
    # a T_net other than the stored one was chosen on no boxes of this model
    assert refit_temperature.main([*args[:4], "5", "--splits", "20", "--grid", str(one), "--write"]) == 0
    other = json.loads((model / "model.json").read_text())["calibration"]
    assert other["network_temperature"] == 5.0 and other["grid_calibration"]["network_temperature_indices"] == []
    with pytest.raises(SystemExit, match="shares 100 boxes"):
        refit_temperature.main([*args, "--grid", str(a), str(one)])
    b.write_text(json.dumps({**head, "points": 15, "boxes": {k: boxes[k] for k in list(boxes)[100:]}}))
    with pytest.raises(SystemExit, match="other settings than .*points"):
        refit_temperature.main([*args, "--grid", str(a), str(b)])
    with pytest.raises(SystemExit, match="--network-temperature needs --network"):
        refit_temperature.main(["--model", str(model), "--grid", str(a), "--network-temperature", "4"])


def _two_term_profiles(rng: np.random.Generator, keys) -> dict:
    """bench_profiles_1d-style boxes whose 1-D log L is a calibrated box-statistics Gaussian (width 0.03 / 0.024,
    peak scattered by that much about the truth) plus a network Gaussian 4x too sharp (width 0.005 / 0.004, peak
    scattered sqrt(4) times wider): box + network / 4 is the exact likelihood of the two estimates."""
    sd_b, sd_n = np.array([0.03, 0.024]), np.array([0.005, 0.004])
    out = {}
    for k in keys:
        truth = np.array([rng.uniform(0.2, 0.4), rng.uniform(0.7, 0.9)])
        mb, mn = truth + sd_b * rng.normal(size=2), truth + 2.0 * sd_n * rng.normal(size=2)
        entry = {"truth": truth.tolist()}
        for i, p in enumerate(("omega_m", "sigma_8")):
            x = np.linspace(0.1, 0.5, 30) if i == 0 else np.linspace(0.6, 1.0, 30)
            box = -0.5 * ((x - mb[i]) / sd_b[i]) ** 2
            entry[p] = {"grid": x.tolist(), "log_likelihood": (box - 0.5 * ((x - mn[i]) / sd_n[i]) ** 2).tolist(),
                        "box_log_likelihood": box.tolist()}
        out[str(k)] = entry
    return out


def test_refit_profile_tempering_with_the_grids_network_temperature(tmp_path):
    """--network --profiles: 1-D profiles temper the network's term by the model's (grids') T_net, 4 here, the
    exact value, so each parameter's fitted T is near 1 (the 68th percentile of 100 chi2_1 / 2 deficits, sd 0.19;
    seeds 0-5 gave 0.74-1.32: allowed 0.45-1.6, about 3 sd) and the cross-validated 68 % coverage near 68 % (seeds
    0-5: 0.671-0.680; allowed 0.60-0.76). On 60 other boxes (--test) the fit covers near 68 % (sd 0.06: allowed
    0.45-0.9) and more than the stored log L / 1.2, which leaves the network 4x over-confident. --write stores the
    pairs and keeps the rest of the calibration."""
    rng = np.random.default_rng(0)
    model = tmp_path / "model"
    model.mkdir()
    fit, test = tmp_path / "profiles.json", tmp_path / "test.json"
    fit.write_text(json.dumps({"model": str(model), "points": 30, "boxes": _two_term_profiles(rng, range(100))}))
    test.write_text(json.dumps({"model": str(model), "points": 30,
                                "boxes": _two_term_profiles(rng, range(1000, 1060))}))
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2, "calibration": {
        "temperature": 1.2, "network_temperature": 4.0, "grid_temperature": 1.0}}))
    assert refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit), "--test", str(test),
                                   "--splits", "50", "--write"]) == 0
    cal = json.loads((model / "model.json").read_text())["calibration"]
    assert cal["temperature"] == 1.2 and cal["network_temperature"] == 4.0 and cal["grid_temperature"] == 1.0  # kept
    rec = cal["profile_calibration"]
    assert rec["n_boxes"] == 100 and len(rec["indices"]) == 100
    for p in ("omega_m", "sigma_8"):
        pair = cal["profile_tempering"][p]
        assert pair["network_temperature"] == 4.0 and 0.45 <= pair["temperature"] <= 1.6
        assert 0.60 <= rec[p]["cross_validation"]["coverage68"] <= 0.76
        assert rec[p]["network_temperature_table"]["rows"][0][0] == 1.0
        held = rec["test"][p]
        assert 0.45 <= held["network"]["coverage68"] <= 0.9
        assert held["network"]["coverage68"] > held["profile_temperatures"]["coverage68"]
        assert held["network"]["tempering"].startswith("(box + network / 4)")
    # a model without a network temperature needs one given; boxes of the grids' fit are refused
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2, "calibration": {
        "temperature": 1.2}}))
    with pytest.raises(SystemExit, match="no network_temperature"):
        refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit)])
    assert refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit),
                                   "--network-temperature", "4", "--splits", "2"]) == 0
    (model / "model.json").write_text(json.dumps({"format": "lssviewer-model", "format_version": 2, "calibration": {
        "temperature": 1.2, "network_temperature": 4.0, "grid_calibration": {"indices": [3]}}}))
    with pytest.raises(SystemExit, match="shares boxes"):
        refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit), "--splits", "2"])
    with pytest.raises(SystemExit, match="--test needs --network --profiles"):
        refit_temperature.main(["--model", str(model), "--grid", str(fit), "--test", str(test)])
    with pytest.raises(SystemExit, match="--per-parameter needs --coverage"):
        refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit), "--per-parameter"])
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit, match="--network-temperature must be"):
            refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit),
                                    "--network-temperature", bad])
    # a test set must not share the fitted boxes; a broken profile is named in one line
    with pytest.raises(SystemExit, match="not a test set"):
        refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit), "--network-temperature",
                                "4", "--splits", "2", "--test", str(fit)])
    data = json.loads(fit.read_text())
    data["boxes"]["7"]["sigma_8"]["box_log_likelihood"][3] = None
    fit.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="box 7: sigma_8"):
        refit_temperature.main(["--model", str(model), "--network", "--profiles", str(fit), "--network-temperature",
                                "4", "--splits", "2"])


def test_interval_widths_match_summarize_profile():
    """The refit's width table (two terms interpolated once, ends interpolated between fine-grid points) gives
    the 68 % interval widths summarize_profile gives for the same tempering, on noisy non-Gaussian profiles."""
    from lssviewer.model.likelihood import Tempering, summarize_profile

    rng = np.random.default_rng(8)
    x = np.linspace(0.6, 1.0, 30)
    t_values = np.array([1.0, 3.0, 9.0])
    for _ in range(5):
        box = -0.5 * ((x - rng.uniform(0.75, 0.85)) / 0.03) ** 2
        ll = box - np.abs((x - rng.uniform(0.75, 0.85)) / 0.006) ** 1.5 + 0.05 * rng.normal(size=x.size)
        widths = refit_temperature._interval_widths(x, ll, box, t_values)
        for k, t_net in enumerate(t_values):
            for j in (0, 100, 180, 279):  # T from 0.2 to 50
                t = refit_temperature.AREA_TEMPERATURES[j]
                iv = summarize_profile(x, ll, temperature=Tempering(t, t_net), box_log_likelihood=box)["interval68"]
                assert widths[k, j] == pytest.approx(iv[1] - iv[0], abs=1e-9)


def test_stage_from_writes_the_staging_calibration_of_new_weights(tmp_path):
    """A new model's weights start from T = 1 on the boxes of the old model's pooled fit, with its T_net and the
    boxes T_net was chosen on (which the later 1-D tests avoid); fit options are refused beside it, and a source
    that names no boxes is a clear error."""
    def model_dir(name: str, calibration: dict | None) -> Path:
        d = tmp_path / name
        d.mkdir()
        meta = {"format": "lssviewer-model", "format_version": 2}
        (d / "model.json").write_text(json.dumps(meta if calibration is None else {**meta, "calibration": calibration}))
        return d

    old = model_dir("old", {"temperature": 1.14, "indices": [5, 7, 9], "network_temperature": 10.0,
                            "grid_temperature": 1.09, "profile_tempering": {"omega_m": {"temperature": 0.9}},
                            "grid_calibration": {"indices": [2, 3], "network_temperature_indices": [20, 21]}})
    new = model_dir("new", {"temperature": 3.0})
    meta = json.loads((new / "model.json").read_text())
    # the new weights' held-out boxes: validation boxes after the 2 early-stopping ones
    meta.update(data={"val_indices": [0, 1, 2, 3, 5, 7, 9, 20, 21]}, training={"config": {"val_boxes": 2}})
    (new / "model.json").write_text(json.dumps(meta))
    assert refit_temperature.main(["--model", str(new), "--stage-from", str(old)]) == 0
    cal = json.loads((new / "model.json").read_text())["calibration"]
    assert cal["temperature"] == 1.0 and cal["indices"] == [5, 7, 9] and cal["network_temperature"] == 10.0
    assert cal["grid_calibration"] == {"network_temperature_indices": [20, 21]}
    assert not {"grid_temperature", "profile_tempering"} & set(cal)
    # a T_net chosen on the grid fit's own boxes: those are the boxes to avoid
    refit_temperature.main(["--model", str(new), "--stage-from", str(model_dir("own", {
        "indices": [9], "network_temperature": 8.0, "grid_calibration": {"indices": [2, 3]}}))])
    assert json.loads((new / "model.json").read_text())["calibration"]["grid_calibration"] == {
        "network_temperature_indices": [2, 3]}
    # boxes these weights trained or early-stopped on cannot calibrate them
    for val in ([0, 1, 2, 3, 5, 7, 20, 21], [5, 2, 3, 7, 9, 20, 21]):
        meta["data"]["val_indices"] = val
        (new / "model.json").write_text(json.dumps(meta))
        with pytest.raises(SystemExit, match=r"1 of .* calibration boxes \(e.g. [95]\) were trained or early-stopped"):
            refit_temperature.main(["--model", str(new), "--stage-from", str(old)])
    with pytest.raises(SystemExit, match="no fit options"):
        refit_temperature.main(["--model", str(new), "--stage-from", str(old), "--coverage", "x.json"])
    with pytest.raises(SystemExit, match="names no boxes"):
        refit_temperature.main(["--model", str(new), "--stage-from", str(model_dir("bare", None))])
