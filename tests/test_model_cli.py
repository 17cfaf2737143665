"""``lssviewer train / sample / scan`` end to end on a tiny suite (CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _model_helpers import toy_suite
from scipy.stats import chi2

from lssviewer.cli import main
from lssviewer.io import hdf5
from lssviewer.model import load_model
from lssviewer.model.checkpoint import write_calibration


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    hdf5.write(toy_suite(12, 8, seed=3), d / "suite.h5")
    (d / "cfg.toml").write_text("""steps = 4
batch_size = 4
warmup = 1
log_every = 2
val_every = 4
ckpt_every = 2
val_boxes = 2
val_noise = 2
sample_steps = 3
[network]
d_model = 16
n_layers = 1
n_heads = 2
mlp_ratio = 2
fourier_features = 1
cond_dim = 16
""")
    return d


def test_train_sample_scan(workdir, capsys):
    run = workdir / "runs" / "tiny"
    args = ["train", "--data", str(workdir / "suite.h5"), "--out", str(run), "--config",
            str(workdir / "cfg.toml"), "--no-progress"]
    assert main([*args, "--steps", "2"]) == 0
    assert main(args) == 2  # refuses to overwrite a run
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert json.loads((run / "model.json").read_text())["training"]["step"] == 4

    out = workdir / "s.h5"
    assert main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-n", "2", "--seed", "1", "-o", str(out),
                 "--model", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 and summary["steps"] == 3 and summary["n_halos"] == 8
    assert (summary["sampler"], summary["final"], summary["spacing"]) == ("dpm2", "denoise", "logsnr")
    cats = hdf5.read(out)
    assert len(cats) == 2 and cats[0].omega_m == 0.3
    assert main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-n", "2", "--seed", "1", "-o", str(out),
                 "--model", str(run), "--json", "--final", "decoder_mean", "--spacing", "time"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["final"], summary["spacing"]) == ("decoder_mean", "time")
    assert not np.array_equal(hdf5.read(out)[0].to_array(), cats[0].to_array())

    assert main(["scan", str(workdir / "suite.h5"), "--index", "1", "--param", "sigma_8", "--points", "5",
                 "--n-noise", "4", "--model", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"param", "grid", "log_likelihood", "stderr", "map", "interval68", "interval95", "truth"} <= set(res)
    assert res["param"] == "sigma_8" and len(res["grid"]) == 5 and len(res["log_likelihood"]) == 5
    truth = hdf5.read(workdir / "suite.h5", [1])[0]
    assert res["truth"] == pytest.approx(truth.sigma_8) and res["fixed"]["omega_m"] == pytest.approx(truth.omega_m)
    lo, hi = res["interval68"]
    assert 0.6 <= lo <= res["map"] <= hi <= 1.0
    assert main(["scan", str(workdir / "suite.h5"), "--index", "1", "--param", "sigma_8", "--points", "5",
                 "--n-noise", "4", "--model", str(run)]) == 0
    assert f"conditional on omega_m = {truth.omega_m:.4g}, its true value" in capsys.readouterr().out

    assert main(["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
                 "--model", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["log_likelihood"]) == 3 and len(res["log_likelihood"][0]) == 3
    first = hdf5.read(workdir / "suite.h5", [0])[0]
    assert set(res["interval68"]) == {"omega_m", "sigma_8"} and res["truth"] == [first.omega_m, first.sigma_8]
    assert res["temperature"] == 1.0  # an uncalibrated model
    assert "box_log_likelihood" not in res  # not box-standardised: no box statistics' term
    assert load_model(run).box_log_likelihood(first, [[0.3, 0.8]]) is None
    # zoomed by default: a 7 x 7 grid over the prior with 4 draws, then windows inside it; the result is the last
    st = res["stages"]
    assert st[0]["reason"] == "prior" and st[0]["n_noise"] == 4 and len(st[0]["omega_m"]) == 7
    assert 2 <= len(st) <= 3 and st[-1]["log_likelihood"] == res["log_likelihood"]
    assert res["grid"] == {"omega_m": st[-1]["omega_m"], "sigma_8": st[-1]["sigma_8"]}
    assert 0.1 <= res["grid"]["omega_m"][0] < res["grid"]["omega_m"][-1] <= 0.5
    assert isinstance(res["window_cut"], bool)
    assert main(["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
                 "--model", str(run), "--json", "--no-zoom"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert len(whole["stages"]) == 1 and whole["grid"]["omega_m"] == pytest.approx([0.1, 0.3, 0.5])
    assert whole["window_cut"] is None

    # a calibrated model: same ELBO values, intervals from log L / T (wider for T > 1)
    scan = ["scan", str(workdir / "suite.h5"), "--index", "1", "--param", "sigma_8", "--points", "9",
            "--n-noise", "4", "--model", str(run), "--json"]
    assert main(scan) == 0
    raw = json.loads(capsys.readouterr().out)
    write_calibration(run, {"temperature": 40.0, "n_boxes": 0})
    assert load_model(run).temperature == 40.0
    assert main(scan) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["log_likelihood"] == raw["log_likelihood"] and cal["temperature"] == 40.0
    assert cal["interval68"][1] - cal["interval68"][0] >= raw["interval68"][1] - raw["interval68"][0]
    assert main(["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
                 "--model", str(run), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    # the summary, its contour levels and the window test use log L / T, given beside the raw log L: the levels
    # are its (interpolated) maximum - chi2_ppf(p, 2) / 2 (1.148 for 68.27 %, 2.996 for 95 %)
    tempered = np.array(both["tempered_log_likelihood"])
    np.testing.assert_allclose(tempered, np.array(both["log_likelihood"]) / 40.0, rtol=1e-12)
    d68, d95 = chi2.ppf(0.6827, 2) / 2, chi2.ppf(0.95, 2) / 2
    assert both["levels"]["95"] - both["levels"]["68"] == pytest.approx(d68 - d95, abs=1e-9)
    # the interpolant's maximum is at least the nodes' (here the untrained model's surface is nearly flat: barely more)
    assert tempered.max() - d68 - 1e-9 <= both["levels"]["68"] <= tempered.max() - d68 + 0.05
    assert main([*scan, "--uncalibrated"]) == 0
    assert json.loads(capsys.readouterr().out)["interval68"] == raw["interval68"]
    # a parameter's own temperature, when fitted, serves its 1-D profiles; 2-D grids keep the pooled T (no grid T)
    write_calibration(run, {"temperature": 40.0, "profile_temperatures": {"sigma_8": 1.0, "omega_m": 9.0}})
    assert load_model(run).profile_temperature("sigma_8") == 1.0 and load_model(run).temperature == 40.0
    assert main(scan) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["temperature"] == 1.0 and own["interval68"] == raw["interval68"]
    assert main(["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
                 "--model", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["temperature"] == 40.0
    # a 2-D grid temperature, when fitted, serves 2-D grids
    write_calibration(run, {"temperature": 40.0, "grid_temperature": 7.0})
    assert main(["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
                 "--model", str(run), "--json", "--no-zoom"]) == 0
    assert json.loads(capsys.readouterr().out)["temperature"] == 7.0
    write_calibration(run, {"temperature": 1.0, "grid_temperature": -2.0})
    assert main(scan) == 2
    assert "calibration grid temperature" in capsys.readouterr().err
    write_calibration(run, {"temperature": 1.0, "profile_temperatures": {"h": 2.0}})
    assert main(scan) == 2
    assert "calibration profile temperature h" in capsys.readouterr().err
    write_calibration(run, {"temperature": -1.0})
    assert main(scan) == 2
    assert "calibration temperature" in capsys.readouterr().err
    # tempering the network's term alone needs the box statistics' term: not this model's
    write_calibration(run, {"temperature": 1.0, "network_temperature": 5.0})
    assert main(scan) == 2
    assert "network temperature 5.0 (needs" in capsys.readouterr().err
    write_calibration(run, {"temperature": 1.0, "profile_tempering": {"sigma_8": {"temperature": 1.0,
                                                                                  "network_temperature": 4.0}}})
    assert main(scan) == 2
    assert "calibration profile tempering sigma_8" in capsys.readouterr().err
    write_calibration(run, {"temperature": 1.0})


def test_scan_tempers_the_network_term_of_a_box_standardised_model(workdir, capsys):
    """calibration.network_temperature: 2-D grids use [box + (log L - box) / T_net] / T with the grid temperature
    fitted with it, where box is the box statistics' Gaussian (computed here independently from the transform);
    1-D profiles keep log L / T unless the calibration gives them a pair of their own (profile_tempering)."""

    from lssviewer.model.data import theta_to_unit
    from lssviewer.model.features import box_statistics, catalog_to_raw
    from lssviewer.model.likelihood import Tempering, summarize_profile

    run = workdir / "runs" / "box"
    cfg = workdir / "cfg_box.toml"
    cfg.write_text((workdir / "cfg.toml").read_text().replace(
        "steps = 4\n", "steps = 2\nfeature_theta_degree = 1\nfeature_per_box = true\nfeature_box_sd_degree = 1\n"))
    assert main(["train", "--data", str(workdir / "suite.h5"), "--out", str(run), "--config", str(cfg),
                 "--no-progress"]) == 0
    model = load_model(run)
    assert model.transform.per_box and model.network_temperature is None
    write_calibration(run, {"temperature": 2.0, "n_noise": 8, "grid_temperature": 1.5, "network_temperature": 5.0,
                            "grid_calibration": {"n_noise": 16}})
    model = load_model(run)
    assert model.network_temperature == 5.0 and model.grid_tempering() == Tempering(1.5, 5.0)
    both = ["scan", str(workdir / "suite.h5"), "--param", "both", "--points", "3", "--n-noise", "2",
            "--model", str(run), "--json"]
    assert main([*both, "--no-zoom"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["network_temperature"] == 5.0 and res["temperature"] == 1.5
    assert res["calibration_n_noise"] == 16  # the grid tempering's own fit, not the pooled T's (8)
    diff2 = np.array(res["stderr_difference"])
    top2 = tuple(res["stderr_difference_reference"])
    assert diff2.shape == (3, 3) and diff2[top2] == 0.0
    assert top2 == np.unravel_index(np.argmax(res["log_likelihood"]), (3, 3))
    cat = hdf5.read(workdir / "suite.h5", [0])[0]
    grid = np.array([(a, b) for a in res["grid"]["omega_m"] for b in res["grid"]["sigma_8"]])
    box = model.transform.box_log_prob(box_statistics(catalog_to_raw(cat).astype(np.float64)),
                                       theta_to_unit(grid, model.prior)).reshape(3, 3)
    np.testing.assert_allclose(res["box_log_likelihood"], box, rtol=0, atol=1e-9)
    ll = np.array(res["log_likelihood"])
    np.testing.assert_allclose(res["tempered_log_likelihood"], (box + (ll - box) / 5.0) / 1.5, rtol=0, atol=1e-9)
    assert main(both) == 0  # zoomed: windows sized on the tempered surface
    zoomed = json.loads(capsys.readouterr().out)
    assert main([a for a in both if a != "--json"]) == 0
    text = capsys.readouterr().out
    assert "(box + network / 5) / 1.5" in text and "fitted with --n-noise 16" in text
    assert zoomed["network_temperature"] == 5.0 and len(zoomed["stages"]) >= 2
    assert main([*both, "--uncalibrated"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["tempered_log_likelihood"] == raw["log_likelihood"] and raw["network_temperature"] == 1.0
    profile = ["scan", str(workdir / "suite.h5"), "--param", "sigma_8", "--points", "5", "--n-noise", "2",
               "--model", str(run), "--json"]
    assert main(profile) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["temperature"] == 2.0 and one["network_temperature"] == 1.0
    # calibration.profile_tempering: a 1-D profile over sigma_8 tempers the network's term too, with its own pair
    write_calibration(run, {"temperature": 2.0, "n_noise": 8, "grid_temperature": 1.5, "network_temperature": 5.0,
                            "grid_calibration": {"n_noise": 16}, "profile_calibration": {"n_noise": 12},
                            "profile_tempering": {"sigma_8": {"temperature": 0.7, "network_temperature": 4.0}}})
    model = load_model(run)
    assert model.profile_tempering("sigma_8") == Tempering(0.7, 4.0)
    assert model.profile_tempering("omega_m") == Tempering(2.0)  # no pair of its own: the pooled T
    assert main(profile) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["temperature"] == 0.7 and one["network_temperature"] == 4.0 and one["calibration_n_noise"] == 12
    # error bars of log L - max (common random numbers): 0 at the highest point, finite elsewhere
    top = int(np.argmax(one["log_likelihood"]))
    assert one["stderr_difference"][top] == 0.0 and np.all(np.isfinite(one["stderr_difference"]))
    assert one["stderr_difference_reference"] == top
    theta = np.column_stack([np.full(5, one["fixed"]["omega_m"]), one["grid"]])
    box1 = model.transform.box_log_prob(box_statistics(catalog_to_raw(cat).astype(np.float64)),
                                        theta_to_unit(theta, model.prior))
    np.testing.assert_allclose(one["box_log_likelihood"], box1, rtol=0, atol=1e-9)
    ll1 = np.array(one["log_likelihood"])
    tempered1 = (box1 + (ll1 - box1) / 4.0) / 0.7
    np.testing.assert_allclose(one["tempered_log_likelihood"], tempered1, rtol=0, atol=1e-9)
    ref = summarize_profile(one["grid"], tempered1)
    assert one["map"] == pytest.approx(ref["map"]) and one["interval68"] == pytest.approx(ref["interval68"])
    assert main([a for a in profile if a != "--json"]) == 0
    assert "(box + network / 4) / 0.7" in capsys.readouterr().out
    assert main([*profile[:3], "omega_m", *profile[4:]]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["temperature"] == 2.0 and other["network_temperature"] == 1.0 and other["calibration_n_noise"] == 8


def test_cli_errors_are_one_line(workdir, capsys, tmp_path):
    assert main(["sample", "--omega-m", "0.9", "--sigma-8", "0.8", "-o", str(tmp_path / "x.h5"),
                 "--model", str(workdir / "runs" / "tiny")]) == 2
    err = capsys.readouterr().err
    assert "outside the prior box" in err and "--allow-extrapolation" in err and err.count("\n") == 1
    assert main(["scan", str(workdir / "suite.h5"), "--index", "99", "--model", str(workdir / "runs" / "tiny")]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-o", str(tmp_path / "x.h5"),
                 "--model", str(tmp_path)]) == 2
    assert "not an lssviewer model" in capsys.readouterr().err


def test_help_of_the_model_verbs(capsys):
    for argv in (["--help"], ["train", "--help"], ["sample", "--help"], ["scan", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--allow-extrapolation" in out and "--resume" in out and "--param" in out


def test_scan_defaults_match_the_library():
    """The scan verb, the GUI worker and session state their default noise draws without importing torch;
    they must agree with the library default the model card was calibrated with."""
    import inspect

    from lssviewer.cli import build_parser
    from lssviewer.gui.session import Session
    from lssviewer.gui.worker import InferenceWorker
    from lssviewer.model.likelihood import DEFAULT_NOISE

    args = build_parser().parse_args(["scan", "x.h5"])
    assert args.n_noise == DEFAULT_NOISE
    assert Session().scan_noise == DEFAULT_NOISE
    assert inspect.signature(InferenceWorker.scan).parameters["n_noise"].default == DEFAULT_NOISE
