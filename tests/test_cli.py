"""The command line: help for every verb, info/convert, errors as one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import make_catalog

from lssviewer import __version__, io
from lssviewer.cli import _available_verbs, main


def test_help_on_every_verb(capsys):
    verbs = list(_available_verbs())
    assert {"info", "convert", "gui"} <= set(verbs)
    for verb in verbs:
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: lssviewer {verb}"), verb


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"lssviewer {__version__}"


def test_info_json_on_real_rockstar(rockstar_path, capsys):
    assert main(["info", str(rockstar_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "rockstar"
    (cat,) = report["catalogs"]
    assert cat["n_halos"] == 4764 and cat["box_size"] == 25.0 and cat["redshift"] == 0.0
    assert cat["cosmology"]["omega_m"] == pytest.approx(0.308)


def test_info_table_for_a_suite(tmp_path, capsys):
    path = tmp_path / "s.h5"
    io.save([make_catalog(seed=i, om=0.2 + 0.1 * i) for i in range(3)], path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "3 catalog(s)" in out[0] and len(out) == 5 and "0.4000" in out[-1]


def test_convert_chain_and_index(tmp_path, rockstar_path, capsys):
    assert main(["convert", str(rockstar_path), str(tmp_path / "a.h5")]) == 0
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "b.csv")]) == 0
    assert main(["convert", str(tmp_path / "b.csv"), str(tmp_path / "c.npz")]) == 0
    assert main(["convert", str(tmp_path / "c.npz"), str(tmp_path / "d.h5")]) == 0
    assert io.load(tmp_path / "d.h5")[0].equals(io.load(rockstar_path)[0])
    suite = tmp_path / "suite.h5"
    io.save([make_catalog(seed=i) for i in range(3)], suite)
    assert main(["convert", str(suite), str(tmp_path / "one.csv"), "--index", "2"]) == 0
    assert io.load(tmp_path / "one.csv")[0].provenance["seed"] == 2
    assert main(["convert", str(suite), str(tmp_path / "x.csv"), "--index", "7"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_debug_shows_traceback(tmp_path):
    missing = tmp_path / "nope.h5"
    quiet = subprocess.run([sys.executable, "-m", "lssviewer", "info", str(missing)],
                           capture_output=True, text=True)
    assert quiet.returncode == 2
    assert quiet.stderr == f"lssviewer: error: {missing}: no such file\n"
    loud = subprocess.run([sys.executable, "-m", "lssviewer", "--debug", "info", str(missing)],
                          capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
