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
