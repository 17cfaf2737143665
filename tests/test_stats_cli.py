"""``lssviewer stats``: JSON output, tables, comparisons, figures and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lssviewer import Cosmology, HaloCatalog, io, stats
from lssviewer.cli import main


def _suite(path, seeds, n=400, box=200.0, cosmology=True):
    cats = []
    for s in seeds:
        rng = np.random.default_rng(s)
        cats.append(HaloCatalog(rng.uniform(0, box, (n, 3)), rng.normal(0, 300, (n, 3)),
                                10 ** rng.uniform(12, 14, n), box, 0.5,
                                Cosmology(0.3, 0.8) if cosmology else None, name=f"c{s}"))
    io.save(cats, path)
    return str(path)


@pytest.fixture
def suites(tmp_path):
    return _suite(tmp_path / "sims.h5", [1, 2, 3]), _suite(tmp_path / "samples.h5", [11, 12, 13])


def test_stat_names_match_the_registry():
    from lssviewer.commands.stats import STAT_NAMES

    assert set(STAT_NAMES) == set(stats.STATS)


def test_json_of_a_suite_and_of_one_catalog(suites, capsys):
    sims, _ = suites
    assert main(["stats", sims, "--stat", "xi", "--json", "--bins", "0,10,20,40"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"stat", "edges", "centers", "values", "errors", "n_halos", "box_size"} <= set(d)
    assert d["edges"] == [0, 10, 20, 40] and d["centers"] == [5, 15, 30]
    assert d["n_halos"] == [400, 400, 400] and isinstance(d["values"], list) and len(d["values"]) == 3
    # the set mean equals the Python API's result on the same catalogs
    expect = stats.compute("xi", io.load(sims), edges=[0, 10, 20, 40]).mean()
    np.testing.assert_allclose(d["values"], expect)
    assert main(["stats", sims, "--stat", "xi-rsd", "--json", "--index", "1", "--los", "x",
                 "--bins", "0:40:4"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["values"]) == {"0", "2", "4"} and d["n_halos"] == 400 and d["meta"]["los"] == "x"


def test_two_files_compare_and_plot(suites, tmp_path, capsys):
    sims, samples = suites
    out = tmp_path / "hmf.png"
    assert main(["stats", sims, samples, "--stat", "hmf", "--plot", str(out)]) == 0
    captured = capsys.readouterr()
    assert "samples.h5 vs sims.h5" in captured.out and "chi2" in captured.out
    assert out.stat().st_size > 1000
    assert main(["stats", sims, samples, "--stat", "knn", "--json", "--k", "1,2", "--randoms", "2000",
                 "--seed", "4", "--top", "300"]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert [o["label"] for o in objs] == ["sims.h5", "samples.h5"]
    assert set(objs[0]["values"]) == {"1", "2"} and objs[0]["n_halos"] == [300, 300, 300]
    cmp = objs[1]["comparison"]
    assert cmp["reference"] == "sims.h5" and cmp["dof"] > 0 and set(cmp["residual"]) == {"1", "2"}


def test_pk_options_in_the_table(suites, capsys):
    sims, _ = suites
    assert main(["stats", sims, "--stat", "pk", "--mesh", "32", "--interlace", "--assignment", "tsc",
                 "--rsd", "--los", "y", "--ells", "0,2"]) == 0
    text = capsys.readouterr().out
    assert "# shot_noise: 20000" in text and "# los: y" in text and "# space: redshift" in text
    assert main(["stats", sims, "--stat", "pairwise", "--jackknife", "2", "--json", "--bins", "0,20,40"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["meta"]["error"].startswith("jackknife") and len(d["values"]) == 2


@pytest.mark.parametrize("extra,message", [
    (["--stat", "xi", "--bins", "0,a"], "bin edges must be"),
    (["--stat", "xi", "--bins", "0,150"], "half the box"),
    (["--stat", "xi", "--mesh", "64"], "--mesh applies to pk"),
    (["--stat", "hmf", "--index", "7"], "--index 7 out of range"),
    (["--stat", "hmf", "--plot", "out.jpg"], "--plot needs"),
])
def test_errors_are_one_line_with_status_2(suites, capsys, extra, message):
    sims, _ = suites
    assert main(["stats", sims, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lssviewer: error:") and message in err and "\n" not in err


def test_missing_cosmology_names_the_file(tmp_path, capsys):
    bare = _suite(tmp_path / "bare.h5", [5], cosmology=False)
    assert main(["stats", bare, "--stat", "xi-rsd"]) == 2
    err = capsys.readouterr().err
    assert "bare.h5" in err and "cosmology" in err


def test_command_module_imports_no_heavy_library():
    code = ("import argparse, sys; import lssviewer.commands.stats as m; m.add_arguments(argparse.ArgumentParser()); "
            "print(sorted(x for x in ('scipy', 'matplotlib', 'torch', 'PySide6') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
