"""The stats API: StatResult and its JSON, the registry, comparisons between sets, figures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lssviewer import Cosmology, HaloCatalog, stats
from lssviewer.errors import CatalogError, ParameterError
from lssviewer.stats import StatResult


def _catalog(seed: int, n: int = 300, box: float = 100.0, mass_scale: float = 1.0) -> HaloCatalog:
    rng = np.random.default_rng(seed)
    return HaloCatalog(rng.uniform(0, box, (n, 3)), rng.normal(0, 300, (n, 3)),
                       mass_scale * 1e12 * rng.uniform(0, 1, n) ** -1.0, box, 0.5, Cosmology(0.3, 0.8),
                       name=f"cat{seed}")


def test_registry_lists_every_statistic_with_labels_and_default_bins():
    assert set(stats.STATS) == {"hmf", "xi", "xi-rsd", "pk", "vpdf", "pairwise", "knn"}
    cats = [_catalog(0), _catalog(1)]
    for name, spec in stats.STATS.items():
        assert spec.name == name and spec.label and spec.x_label and spec.y_label and spec.default_bins
        edges = spec.default_edges(cats)
        assert edges.ndim == 1 and len(edges) >= 3 and np.all(np.diff(edges) > 0)
        res = stats.compute(name, cats)
        assert isinstance(res, StatResult) and res.stat == name
        assert res.n_catalogs == 2 and res.names == ["cat0", "cat1"]
        np.testing.assert_array_equal(res.edges, edges)
        for comp in res.components:
            assert res.values[comp].shape == res.errors[comp].shape == (2, res.n_bins)


def test_compute_rejects_bad_requests():
    cat = _catalog(0)
    with pytest.raises(ParameterError, match="unknown statistic 'xx'"):
        stats.compute("xx", cat)
    with pytest.raises(ParameterError, match="does not take option"):
        stats.compute("xi", cat, mesh=64)
    with pytest.raises(ParameterError, match="increasing"):
        stats.compute("xi", cat, edges=[0, 20, 10])
    with pytest.raises(ParameterError, match="comma-separated"):
        stats.compute("xi", cat, edges="0,a,10")
    with pytest.raises(CatalogError, match="box size"):
        stats.compute("hmf", [cat, _catalog(1, box=50.0)])
    with pytest.raises(CatalogError, match="no catalogs"):
        stats.compute("hmf", [])
    np.testing.assert_allclose(stats.compute("xi", cat, edges="0:30:3").edges, [0, 10, 20, 30])
    logbins = stats.compute("xi", cat, edges="log:0.5:50:2")
    np.testing.assert_allclose(logbins.edges, [0.5, 5, 50])
    np.testing.assert_allclose(logbins.centers, [0.5 * 10**0.5, 5 * 10**0.5])  # geometric centres


def test_json_form_single_catalog_and_set():
    one = stats.compute("xi", _catalog(0), edges=[0, 5, 10, 20])
    d = json.loads(one.to_json())
    assert {"stat", "edges", "centers", "values", "errors", "n_halos", "box_size"} <= set(d)
    assert d["stat"] == "xi" and d["n_halos"] == 300 and d["box_size"] == 100.0
    assert d["values"] == pytest.approx(list(one.values[""][0])) and len(d["errors"]) == 3
    assert d["edges"] == [0, 5, 10, 20] and d["centers"] == [2.5, 7.5, 15.0]
    three = stats.compute("xi-rsd", [_catalog(s) for s in range(3)], edges=[0, 10, 20])
    d = json.loads(three.to_json())
    assert set(d["values"]) == set(d["errors"]) == {"0", "2", "4"}
    assert d["n_halos"] == [300, 300, 300] and d["n_catalogs"] == 3
    # a set: the mean over catalogs and their scatter (std, ddof = 1)
    assert d["values"]["2"] == pytest.approx(list(three.values["2"].mean(axis=0)))
    assert d["errors"]["2"] == pytest.approx(list(three.values["2"].std(axis=0, ddof=1)))
    # NaN (a bin without pairs) becomes null, so the output stays valid JSON
    two = HaloCatalog(np.array([[1.0, 1, 1], [2.0, 1, 1]]), np.zeros((2, 3)), np.ones(2), 10.0)
    d = json.loads(stats.compute("pairwise", two, edges=[0, 2, 4]).to_json())
    assert d["values"][1] is None


def test_select_and_concatenate():
    res = stats.compute("hmf", [_catalog(s) for s in range(4)], edges=np.arange(12, 15.1, 0.5))
    parts = [res.select([0, 1]), res.select(2), res.select(3)]
    assert parts[1].n_catalogs == 1
    back = StatResult.concatenate(parts)
    np.testing.assert_array_equal(back.values["cumulative"], res.values["cumulative"])
    assert back.names == res.names


def _result(values: np.ndarray, errors: np.ndarray) -> StatResult:
    values = np.asarray(values, float)
    return StatResult("xi", np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5]), {"": values},
                      {"": np.asarray(errors, float)}, np.full(len(values), 10), 100.0)


def test_compare_arithmetic():
    samples = _result([[1.0, 2.0], [3.0, 6.0]], [[9, 9], [9, 9]])  # mean (2, 4), std (sqrt2, sqrt8)
    reference = _result([[0.0, 4.0], [2.0, 4.0], [1.0, 4.0]], [[9, 9]] * 3)  # mean (1, 4), std (1, 0)
    cmp = stats.compare(samples, reference)
    sigma = np.sqrt(np.array([2.0, 8.0]) / 2 + np.array([1.0, 0.0]) / 3)
    np.testing.assert_allclose(cmp.sigma[""], sigma)
    np.testing.assert_allclose(cmp.residual[""], np.array([1.0, 0.0]) / sigma)
    assert cmp.chi2 == pytest.approx(1.0 / sigma[0] ** 2) and cmp.dof == 2
    scatter = stats.compare(samples, reference, mode="scatter")
    # the reference's scatter is 0 in bin 2: that bin has no residual and leaves the dof
    np.testing.assert_allclose(scatter.residual[""][0], 1.0)
    assert np.isnan(scatter.residual[""][1]) and scatter.dof == 1
    # a single catalog per set: its own errors are the scatter
    single = stats.compare(_result([[2.0, 2.0]], [[0.3, 0.4]]), _result([[1.0, 2.0]], [[0.4, 0.3]]))
    np.testing.assert_allclose(single.residual[""], [1.0 / 0.5, 0.0])
    json.dumps(single.to_dict())
    with pytest.raises(ParameterError, match="different bin edges"):
        stats.compare(samples, StatResult("xi", np.array([0.0, 1.0, 3.0]), np.array([0.5, 2]),
                                          {"": np.zeros((1, 2))}, {"": np.ones((1, 2))}, [1], 100.0))


def test_compare_detects_a_mass_shift_and_accepts_the_same_distribution():
    # 40 + 40 catalogs from one distribution: residuals ~ N(0, 1), diagonal chi^2 near its dof
    # (differential bins are independent) and Hotelling's T^2 p-value not extreme. Masses
    # scaled by 1.2 (a 0.08 dex shift) are rejected.
    edges = np.arange(12.0, 14.01, 0.25)
    sets = stats.compute_sets("hmf", {"a": [_catalog(s, 2000) for s in range(40)],
                                      "b": [_catalog(100 + s, 2000) for s in range(40)],
                                      "shifted": [_catalog(200 + s, 2000, mass_scale=1.2) for s in range(40)]},
                              edges=edges)
    ref = sets["a"]
    same = stats.compare(sets["b"], ref)
    diff_chi2 = same.chi2_components["differential"]
    dof = same.dof_components["differential"]
    assert abs(diff_chi2 - dof) < 4.5 * np.sqrt(2 * dof)
    assert same.p_value_t2 is not None and same.p_value_t2 > 1e-4
    shifted = stats.compare(sets["shifted"], ref)
    assert shifted.chi2_components["differential"] > dof + 10 * np.sqrt(2 * dof)
    assert shifted.p_value_t2 < 1e-6 and shifted.max_abs_residual > 5


def test_figure_compares_sets_headless(tmp_path):
    from matplotlib.figure import Figure

    sets = stats.compute_sets("xi-rsd", {"sims": [_catalog(s) for s in range(3)],
                                         "samples": [_catalog(10 + s) for s in range(3)]}, edges=[0, 10, 20, 30])
    fig = stats.plots.figure("xi-rsd", sets)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6  # three multipoles x (values + residual)
    for ext in ("png", "svg", "pdf"):
        out = tmp_path / f"fig.{ext}"
        fig.savefig(out)
        assert out.stat().st_size > 1000
    single = stats.plots.figure("hmf", {"one": stats.compute("hmf", _catalog(0))})
    assert len(single.axes) == 2  # cumulative, differential; no residual panel
    # log mass axes: minor ticks labelled only at 2x and 5x a power of ten (else the labels collide)
    ax = single.axes[0]
    ax.set_xlim(1.5e14, 3.5e15)
    single.canvas.draw()
    labels = [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    assert labels and all(("2\\times" in t or "5\\times" in t) for t in labels), labels
    with pytest.raises(ParameterError, match="reference set"):
        stats.plots.figure("xi-rsd", sets, reference="nope")
    with pytest.raises(ParameterError, match="holds 'xi-rsd'"):
        stats.plots.figure("xi", sets)


def test_core_imports_stay_light():
    # lssviewer.stats must not pull in matplotlib (only .plots does), and .plots never pyplot or Qt
    code = ("import sys, lssviewer.stats; a = 'matplotlib' in sys.modules; import lssviewer.stats.plots; "
            "print(a, 'matplotlib.pyplot' in sys.modules, any(m.startswith(('PySide6', 'pyvista')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
