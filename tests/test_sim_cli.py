"""``lssviewer simulate`` and ``lssviewer suite`` on the command line; bad input fails before any work."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from lssviewer.cli import main
from lssviewer.io import hdf5

SMALL = ["--box-size", "64", "--particles", "32", "--n-halos", "20", "--min-particles", "10"]


def test_simulate_writes_catalog_summary_and_power(tmp_path, capsys):
    out = tmp_path / "box.h5"
    pk = tmp_path / "pk.txt"
    code = main(["simulate", "--omega-m", "0.3", "--sigma-8", "0.8", "--seed", "1", "-o", str(out),
                 *SMALL, "--json", "--power", str(pk)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("box_size", "particle_mass", "mesh", "steps", "n_halos", "time_ics", "time_gravity", "time_fof"):
        assert key in summary
    assert summary["mesh"] == 64 and summary["n_halos"] == 20 and summary["steps"] == 10
    # m_p = Omega_m rho_crit L^3 / N_p with rho_crit = 2.775e11 Msun/h / (Mpc/h)^3
    assert summary["particle_mass"] == pytest.approx(0.3 * 2.775e11 * 64.0**3 / 32**3)
    (cat,) = hdf5.read(out)
    assert len(cat) == 20 and cat.cosmology.omega_m == 0.3 and cat.cosmology.sigma_8 == 0.8
    assert np.all(np.diff(cat.masses) <= 0)
    prov = cat.provenance
    assert prov["seed"] == 1 and prov["config"]["particles"] == 32 and "lssviewer_version" in prov
    table = np.loadtxt(pk)
    assert table.shape[1] == 3 and np.all(table[:, 1] > 0)


@pytest.mark.parametrize("args, message", [
    (["--omega-m", "0", "--sigma-8", "0.8"], "omega_m"),
    (["--omega-m", "-0.3", "--sigma-8", "0.8"], "omega_m"),
    (["--omega-m", "0.3", "--sigma-8", "0"], "sigma_8"),
    (["--omega-m", "0.3", "--sigma-8", "-1"], "sigma_8"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--box-size", "0"], "box_size"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--box-size", "-5"], "box_size"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--particles", "16", "--n-halos", "500"], "too few particles"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--redshift", "12"], "not after the start"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--redshift", "9"], "not after the start"),
    (["--omega-m", "0.3", "--sigma-8", "0.8", "--particles", "32", "--n-halos", "400"], "expected to hold only"),
])
def test_bad_input_is_one_line_error_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "box.h5"
    start = time.perf_counter()
    code = main(["simulate", "--seed", "1", "-o", str(out), *args])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lssviewer: error:") and message in err and err.count("\n") == 1
    assert not out.exists()
    assert elapsed < 5.0  # refused up front (a simulation of the default box takes far longer)


def test_suite_cli_resume_and_merge(tmp_path, capsys):
    tiny = ["--box-size", "40", "--particles", "16", "--n-halos", "2", "--min-particles", "8", "--no-progress"]
    a, b, m = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "m.h5"
    assert main(["suite", "-n", "4", "--seed", "3", "-o", str(a), "--shard", "0/2", *tiny]) == 0
    assert "made 2 boxes" in capsys.readouterr().out
    assert main(["suite", "-n", "4", "--seed", "3", "-o", str(a), "--shard", "0/2", *tiny]) == 0
    assert "already done" in capsys.readouterr().out
    assert main(["suite", "-n", "4", "--seed", "3", "-o", str(b), "--shard", "1/2", "--json", *tiny]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["made"] == 2 and report["seconds_per_box"] > 0 and report["boxes_per_hour"] > 0
    assert main(["suite", "--merge", str(a), str(b), "-o", str(m)]) == 0
    assert [c.provenance["box_index"] for c in hdf5.read(m)] == [0, 1, 2, 3]
    # errors: no seed, missing boxes at merge
    assert main(["suite", "-n", "4", "-o", str(tmp_path / "x.h5"), *tiny]) == 2
    assert main(["suite", "--merge", str(a), "-o", str(tmp_path / "y.h5")]) == 2
    assert "missing" in capsys.readouterr().err


def test_verbs_import_nothing_heavy_and_have_help():
    # command modules import nothing heavy at import time (numba, scipy, torch stay out of --help)
    code = ("import sys, lssviewer.commands.simulate, lssviewer.commands.suite; "
            "print(any(m in sys.modules for m in ('numba', 'torch', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    from lssviewer.cli import _available_verbs

    assert {"simulate", "suite"} <= set(_available_verbs())
    for verb in ("simulate", "suite"):
        help_text = subprocess.run([sys.executable, "-m", "lssviewer", verb, "--help"], capture_output=True,
                                   text=True, check=True).stdout
        assert help_text.startswith(f"usage: lssviewer {verb}") and "--box-size" in help_text


def test_device_selection():
    from lssviewer.errors import ParameterError
    from lssviewer.sim import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("torch-cpu") == "torch-cpu"
    with pytest.raises(ParameterError, match="unknown device"):
        resolve_device("tpu")
    import torch

    if not torch.cuda.is_available():  # on a GPU machine "cuda" is valid; both branches are checked
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            resolve_device("cuda")
    else:  # pragma: no cover - GPU machines
        assert resolve_device("cuda") == "cuda"
