"""Session files and export helpers of the GUI (no display needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_catalog

from lssviewer import io
from lssviewer.errors import FormatError
from lssviewer.gui.export import export_catalog, export_figure, qt_filter
from lssviewer.gui.session import Session, load_session, save_session


def test_session_round_trip(tmp_path):
    s = Session(omega_m=0.27, sigma_8=0.91, seed=12, steps=30, model="/m", files=["/a.h5", "/b.list"],
                selected=(1, 0), color_by="speed", cmap="plasma", space="redshift", los_axis="x",
                display="simulation", camera=[[1, 2, 3], [0, 0, 0], [0, 0, 1]], stat_samples=6,
                scan_points=7, scan_noise=3, scan_zoom=False)
    path = tmp_path / "s.json"
    save_session(s, path)
    assert json.loads(path.read_text())["format"] == "lssviewer-session"
    assert load_session(path) == s


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not an lssviewer session"),
    ('{"format": "lssviewer-session", "version": 99}', "unsupported session version"),
    ('{"format": "lssviewer-session", "version": 1, "omega_m": 2.0}', "not a cosmology"),
    ('{"format": "lssviewer-session", "version": 1, "display": "sideways"}', "display must be one of"),
    ('{"format": "lssviewer-session", "version": 1, "seed": -1}', "seed must be"),
    ('{"format": "lssviewer-session", "version": 1, "scan_zoom": "yes"}', "scan_zoom must be true or false"),
])
def test_bad_session_files_give_one_line_errors(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(FormatError) as err:
        load_session(path)
    assert reason in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_export_catalog_every_writable_format_reads_back(tmp_path):
    cat = make_catalog(n=40, box=100.0)
    for fmt in io.writable_formats():
        path = tmp_path / f"out{fmt.extensions[0]}"
        if fmt.name == "quijote":
            continue  # a directory format; not offered as a single-file export
        assert export_catalog(cat, path) == fmt.name
        if not fmt.readable:  # write-only (VTK PolyData for ParaView): reopen with pyvista instead
            import pyvista as pv

            mesh = pv.read(path)
            # float32 points in the file: 1e-5 relative is float32's ~6e-8 with a wide margin
            np.testing.assert_allclose(mesh.points, cat.positions, rtol=1e-5, atol=1e-5)
            continue
        back = io.load(path)
        assert len(back) == 1 and len(back[0]) == 40
        # text formats round to a few significant digits: compare to 1e-5 relative
        np.testing.assert_allclose(back[0].positions, cat.positions, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(back[0].masses, cat.masses, rtol=1e-5)


def test_export_figure_formats_and_bad_extension(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    magic = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}
    for ext, head in magic.items():
        export_figure(fig, tmp_path / f"f{ext}")
        assert (tmp_path / f"f{ext}").read_bytes().startswith(head)
    with pytest.raises(FormatError, match="choose .png, .pdf, .svg"):
        export_figure(fig, tmp_path / "f.jpg")
    assert not (tmp_path / "f.jpg").exists()


def test_qt_filter_lists_every_extension():
    filt = qt_filter([("HDF5", (".h5", ".hdf5")), ("CSV", (".csv",))], all_label="Catalogs")
    assert filt.split(";;") == ["Catalogs (*.csv *.h5 *.hdf5)", "HDF5 (*.h5 *.hdf5)", "CSV (*.csv)",
                                "All files (*)"]
