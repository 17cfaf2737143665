"""The likelihood panel's 2-D contours are drawn from the surface the summary was made from: with the network's
term tempered alone that surface differs in shape from the raw log L the image shows, and the contours must lie
on its 68 % / 95 % levels (not on the raw surface's)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_grid_contours_follow_the_tempered_surface(qtbot):
    from matplotlib.contour import ContourSet

    from lssviewer.gui.panels.likelihood import LikelihoodPanel
    from lssviewer.gui.worker import _default_summarize_2d
    from lssviewer.model.likelihood import Tempering, grid_interpolant_2d

    om, s8 = np.linspace(0.2, 0.4, 9), np.linspace(0.7, 0.9, 7)  # not square: catches a swapped index order
    a, b = np.meshgrid(om, s8, indexing="ij")
    box = -0.5 * (((a - 0.28) / 0.05) ** 2 + ((b - 0.82) / 0.05) ** 2)
    ll = box - 0.5 * (((a - 0.31) / 0.01) ** 2 + ((b - 0.78) / 0.012) ** 2)
    summary = _default_summarize_2d(om, s8, ll, Tempering(temperature=1.25, network=8.0), box)
    tempered = np.asarray(summary["tempered_log_likelihood"])
    np.testing.assert_allclose(tempered, (box + (ll - box) / 8.0) / 1.25)
    # the panel's points: sigma_8 rows (slow), omega_m columns (fast)
    points = [{"index": i * len(om) + j, "theta": (om[j], s8[i]), "log_likelihood": ll[j, i], "stderr": 0.0}
              for i in range(len(s8)) for j in range(len(om))]
    panel = LikelihoodPanel()
    qtbot.addWidget(panel)
    meta = {"mode": "grid", "axis": None, "omega_m": om.tolist(), "sigma_8": s8.tolist(), "truth": [0.3, 0.8],
            "stage": 1, "reason": "zoom"}
    st = SimpleNamespace(meta=meta, points=points, summary=summary, label="test", grid_size=len(points), seq=1)
    try:
        with panel.figure_lock:
            panel._render(st, 600, 400)
            sets = [x for x in panel._data_artists if isinstance(x, ContourSet)]
            assert len(sets) == 1
            f_t, f_raw = grid_interpolant_2d(om, s8, tempered), grid_interpolant_2d(om, s8, ll)
            levels = sorted(summary["levels"].values())
            np.testing.assert_allclose(sets[0].levels, levels)
            raw_top = ll.max()
            for level, path in zip(sets[0].levels, sets[0].get_paths(), strict=True):
                v = path.vertices[::5]
                assert len(v) > 10
                on_t = np.array([f_t(x, y)[0, 0] for x, y in v])
                np.testing.assert_allclose(on_t, level, atol=0.01)  # on the tempered surface's level
                # ... and far from any single level of the raw surface (a different shape: 8x sharper network term)
                on_raw = np.array([f_raw(x, y)[0, 0] for x, y in v]) - raw_top
                assert np.ptp(on_raw) > 1.0
        # the message names the calibration the contours and intervals come from
        panel.begin(meta, len(points), "test")
        panel.finish({"points": points, "summary": summary})
        assert "[box statistics + network term / 8] / 1.25" in panel.message.text()
    finally:
        panel.close_renderer()


def test_profile_shows_the_calibrated_curve_its_interval_comes_from(qtbot):
    """A 1-D profile whose network term is tempered: the panel draws the tempered curve (dashed, max 0) beside the
    raw log L points, the MAP line sits at that curve's peak (not at the raw one), and the message names the
    calibration. An uncalibrated summary draws no second curve."""
    from lssviewer.gui.panels.likelihood import LikelihoodPanel
    from lssviewer.gui.worker import _default_summarize
    from lssviewer.model.likelihood import Tempering

    x = np.linspace(0.6, 1.0, 21)[::-1]  # points arrive in any order
    box = -0.5 * ((x - 0.78) / 0.03) ** 2
    ll = box - 0.5 * ((x - 0.84) / 0.008) ** 2
    summary = _default_summarize(x, ll, Tempering(temperature=0.8, network=4.0), box)
    points = [{"index": k, "theta": (0.3, float(v)), "log_likelihood": float(y), "stderr": 0.0}
              for k, (v, y) in enumerate(zip(x, ll, strict=True))]
    panel = LikelihoodPanel()
    qtbot.addWidget(panel)
    meta = {"mode": "sigma_8", "axis": 1, "values": sorted(x.tolist()), "truth": [0.3, 0.8], "fixed": [0.3, 0.8]}

    def lines(s):
        st = SimpleNamespace(meta=meta, points=points, summary=s, label="test", grid_size=len(points), seq=1)
        with panel.figure_lock:
            panel._render(st, 600, 400)
            return {a.get_label(): a for a in panel._data_artists if hasattr(a, "get_xdata")}

    try:
        drawn = lines(summary)
        curve = drawn["calibrated log L"]
        assert curve.get_linestyle() == "--"
        cx, cy = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
        expected = (box + (ll - box) / 4.0) / 0.8
        order = np.argsort(x)
        np.testing.assert_allclose(cx, x[order])
        np.testing.assert_allclose(cy, expected[order] - expected.max(), atol=1e-9)
        map_x = float(np.asarray(drawn["MAP"].get_xdata())[0])
        assert map_x == pytest.approx(summary["map"])
        # the tempered peak, precision-weighted: (0.78 / 0.03^2 + 0.84 / (4 0.008^2)) / (...) = 0.8267; raw 0.8361
        prec_b, prec_n = 0.03**-2, 0.008**-2
        assert map_x == pytest.approx((0.78 * prec_b + 0.84 * prec_n / 4) / (prec_b + prec_n / 4), abs=2e-4)
        assert _default_summarize(x, ll)["map"] == pytest.approx((0.78 * prec_b + 0.84 * prec_n) / (prec_b + prec_n),
                                                                 abs=2e-4)
        panel.begin(meta, len(points), "test")
        panel.finish({"points": points, "summary": summary})
        assert "[box statistics + network term / 4] / 0.8" in panel.message.text()
        assert "calibrated log L" not in lines(_default_summarize(x, ll))
        # error bars only for the noise of log L - max, when the summary has it
        with panel.figure_lock:
            bars = [a for a in panel._data_artists if "ELBO" in str(a.get_label())]
        assert bars and "noise" not in bars[0].get_label()
        errors = [0.01 * (k + 1) for k in range(len(points))]  # one per point, in the points' (reversed-x) order
        lines({**summary, "stderr_difference": errors})
        with panel.figure_lock:
            bars = [a for a in panel._data_artists if "ELBO" in str(a.get_label())]
            assert "± noise of log L − max" in bars[0].get_label() and bars[0].has_yerr
            segments = bars[0].lines[2][0].get_segments()  # the bars, in the plotted (sorted-x) order
        half = [0.5 * (seg[1][1] - seg[0][1]) for seg in segments]
        np.testing.assert_allclose(half, [errors[k] for k in np.argsort(x)], atol=1e-12)
    finally:
        panel.close_renderer()
