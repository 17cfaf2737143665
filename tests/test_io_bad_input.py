"""Every kind of bad input gives a one-line error naming the file, and no existing file is damaged."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from conftest import make_catalog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lssviewer import io
from lssviewer.errors import LssviewerError


def _assert_one_line(err: LssviewerError, path) -> str:
    text = str(err)
    assert "\n" not in text
    assert text.startswith(str(path)), text
    return text


@pytest.fixture
def good_h5(tmp_path):
    path = tmp_path / "good.h5"
    io.save([make_catalog(n=40, seed=1), make_catalog(n=40, seed=2)], path)
    return path


def _bad_files(tmp_path, good_h5):
    """(name, path, expected message fragment) for each kind of bad input."""
    cases = []

    def add(name, content: bytes, fragment):
        p = tmp_path / name
        p.write_bytes(content)
        cases.append((name, p, fragment))

    data = good_h5.read_bytes()
    add("truncated.h5", data[: len(data) // 2], "not a readable HDF5")
    corrupt = bytearray(data)
    corrupt[100:400] = os.urandom(300)
    add("corrupt.h5", bytes(corrupt), "")
    add("empty.h5", b"", "file is empty")
    add("empty.csv", b"", "file is empty")
    add("garbage.csv", os.urandom(2000) + b"\x00", "binary content")
    add("latin1.csv", "# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,3,4,5,6,1e12 caf\xe9\n".encode("latin-1"),
        "not valid UTF-8")
    add("latin1.list", b"#ID X Y Z VX VY VZ Mvir\n#a = 1\n#Box size: 10 Mpc/h\n1 1 1 1 1 1 1 1e12 \xff\n",
        "not valid UTF-8")
    add("unknown.xyz", b"hello world\n", "unknown format")
    add("nan.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,3,4,5,6,nan\n", "non-finite")
    add("inf.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,inf,4,5,6,1e12\n", "non-finite")
    add("negmass.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,3,4,5,6,-1e12\n", "masses must be > 0")
    add("outside.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,30,4,5,6,1e12\n", "outside the box")
    add("shortrow.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,3,4,5\n", "line 3: expected 7 columns")
    add("text.csv", b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,three,4,5,6,1e12\n", "not a number")
    add("nobox.csv", b"x,y,z,vx,vy,vz,mass\n1,2,3,4,5,6,1e12\n", "box_size")
    add("nocols.list", b"#ID Mvir\n#a = 1\n1 1e12\n", "lacks column")
    add("garbage.list", os.urandom(3000), "")
    add("garbage.npz", b"PK\x03\x04" + os.urandom(500), "")
    add("truncated.npy", np.lib.format.header_data_from_array_1_0(np.zeros((3, 7))).__repr__().encode(), "")
    with open(tmp_path / "wrongshape.npy", "wb") as fh:
        np.save(fh, np.zeros((4, 5)))
    cases.append(("wrongshape.npy", tmp_path / "wrongshape.npy", "expected (n_sims, N, 7)"))
    with open(tmp_path / "objects.npy", "wb") as fh:
        np.save(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases.append(("objects.npy", tmp_path / "objects.npy", "not a numeric .npy"))
    # structurally valid HDF5 with missing / malformed content
    with h5py.File(tmp_path / "nogroup.h5", "w") as f:
        f.create_dataset("x", data=[1, 2])
    cases.append(("nogroup.h5", tmp_path / "nogroup.h5", "no 'catalogs' group"))
    with h5py.File(tmp_path / "missing.h5", "w") as f:
        g = f.create_group("catalogs/000000")
        g.create_dataset("positions", data=np.zeros((3, 3)))
        g.attrs["box_size"] = 10.0
    cases.append(("missing.h5", tmp_path / "missing.h5", "missing the 'velocities' dataset"))
    with h5py.File(tmp_path / "shape.h5", "w") as f:
        g = f.create_group("catalogs/000000")
        g.create_dataset("positions", data=np.zeros((3, 2)))
        g.create_dataset("velocities", data=np.zeros((3, 3)))
        g.create_dataset("masses", data=np.ones(3))
        g.attrs["box_size"] = 10.0
    cases.append(("shape.h5", tmp_path / "shape.h5", "expected (N, 3)"))
    io.save([make_catalog(n=10, seed=1), make_catalog(n=10, seed=2)], tmp_path / "packed_offsets.h5", packed=True)
    with h5py.File(tmp_path / "packed_offsets.h5", "a") as f:
        f["packed/offsets"][1] = 30  # more rows than the arrays hold
    cases.append(("packed_offsets.h5", tmp_path / "packed_offsets.h5", "bad 'offsets'"))
    io.save([make_catalog(n=10, seed=1)], tmp_path / "packed_missing.h5", packed=True)
    with h5py.File(tmp_path / "packed_missing.h5", "a") as f:
        del f["packed/velocities"]
    cases.append(("packed_missing.h5", tmp_path / "packed_missing.h5", "missing a dataset"))
    (tmp_path / "adir").mkdir()
    cases.append(("adir", tmp_path / "adir", "is a directory"))
    cases.append(("missing", tmp_path / "does_not_exist.h5", "no such file"))
    return cases


def test_every_bad_input_gives_one_line(tmp_path, good_h5):
    for name, path, fragment in _bad_files(tmp_path, good_h5):
        with pytest.raises(LssviewerError) as err:
            io.load(path)
        text = _assert_one_line(err.value, path)
        assert fragment in text, (name, text)


def test_cli_bad_input_exit_code_and_single_line(tmp_path, good_h5, capsys):
    from lssviewer.cli import main

    for name, path, _fragment in _bad_files(tmp_path, good_h5):
        assert main(["info", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"lssviewer: error: {path}"), (name, err)
        assert "Traceback" not in err


def test_failed_conversion_leaves_target_untouched(tmp_path, good_h5):
    from lssviewer.cli import main

    target = tmp_path / "precious.csv"
    target.write_text("do not lose me\n")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"# box_size = 10\nx,y,z,vx,vy,vz,mass\n1,2,3,4,5,6,-1\n")
    assert main(["convert", str(bad), str(target)]) == 2
    # a suite cannot be written to CSV (one catalog per file): refused, target intact
    assert main(["convert", str(good_h5), str(target)]) == 2
    assert target.read_text() == "do not lose me\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_write_failure_midway_keeps_old_file(tmp_path, monkeypatch):
    """A writer that dies halfway (e.g. disk full) must not damage the existing file."""
    path = tmp_path / "suite.h5"
    io.save(make_catalog(seed=1), path)
    before = path.read_bytes()

    from lssviewer.io import hdf5

    def boom(group, cat, dtype):
        group.create_dataset("positions", data=cat.positions)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hdf5, "_write_catalog", boom)
    with pytest.raises(LssviewerError, match="No space left"):
        io.save(make_catalog(seed=2), path)
    with pytest.raises(OSError):  # the low-level append raises the OS error itself
        hdf5.append([make_catalog(seed=3)], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.h5"]


def test_unwritable_extension_is_refused(tmp_path):
    with pytest.raises(LssviewerError, match="cannot tell the format"):
        io.save(make_catalog(), tmp_path / "out.xyz")
    with pytest.raises(LssviewerError, match="read-only"):
        io.save(make_catalog(), tmp_path / "out.list", fmt="rockstar")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=600),
       ext=st.sampled_from([".h5", ".csv", ".npz", ".npy", ".list", ".dat"]))
@example(content=b"PK\x03\x04", ext=".npy")  # once crashed: np.load took it for a zip archive
@example(content=b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'", ext=".npy")
def test_readers_never_crash_on_arbitrary_bytes(tmp_path, content, ext):
    """Any bytes under any extension: either a valid catalog or a LssviewerError, nothing else."""
    path = tmp_path / f"fuzz{ext}"
    path.write_bytes(content)
    try:
        cats = io.load(path)
    except LssviewerError as err:
        _assert_one_line(err, path)
    else:
        assert all(len(c) >= 0 for c in cats)


_finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=64)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 30), box=st.floats(1.0, 5000.0), seed=st.integers(0, 2**32 - 1),
       fmt=st.sampled_from(["h5", "csv", "npz", "npy"]), z=st.floats(0, 5))
def test_round_trip_is_lossless(tmp_path, n, box, seed, fmt, z):
    cat = make_catalog(n=n, box=box, seed=seed, z=z)
    path = tmp_path / f"rt.{fmt}"
    io.save(cat, path)
    (back,) = io.load(path)
    assert back.equals(cat)


def test_corrupt_packed_files_give_one_line_errors_from_every_entry_point(tmp_path):
    """count / read / read_cosmologies / append (what train, suite resume and validation call directly, not
    through io.load) all name the file on a damaged packed suite; values a packed file cannot hold are refused."""
    from lssviewer.errors import CatalogError, FormatError
    from lssviewer.io import hdf5

    good = tmp_path / "good_packed.h5"
    io.save([make_catalog(n=10, seed=1), make_catalog(n=12, seed=2)], good, packed=True)

    def damaged(name, edit):
        path = tmp_path / name
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    cases = {
        damaged("no_box.h5", lambda f: f.__delitem__("packed/box_size")): "missing a dataset",
        damaged("no_offsets.h5", lambda f: f.__delitem__("packed/offsets")): "'offsets'",
        damaged("no_flags.h5", lambda f: f.__delitem__("packed/has_cosmology")): "missing a dataset",
        damaged("short_col.h5", lambda f: (f.__delitem__("packed/redshift"),
                                           f["packed"].create_dataset("redshift", data=[0.5]))): "'redshift' holds",
        damaged("bad_version.h5", lambda f: f.attrs.__setitem__("format_version", "two")): "format_version",
    }
    for path, fragment in cases.items():
        calls = [hdf5.read, hdf5.read_cosmologies, lambda p: hdf5.append([make_catalog()], p)]
        if path.name in ("no_offsets.h5", "bad_version.h5"):  # count reads nothing else
            calls.append(hdf5.count)
        for call in calls:
            with pytest.raises(FormatError) as err:
                call(path)
            assert fragment in _assert_one_line(err.value, path), (path.name, str(err.value))
    # a newer layout is named as such even without the groups this version knows
    with h5py.File(tmp_path / "v3.h5", "w") as f:
        f.attrs["format_version"] = 3
    with pytest.raises(FormatError, match="upgrade lssviewer"):
        hdf5.count(tmp_path / "v3.h5")
    # packed files keep an empty 'catalogs' group, so version-1 readers reach their version check
    with h5py.File(good, "r") as f:
        assert len(f["catalogs"]) == 0
    # fixed point that int32 cannot hold (checked on the floats: 1e19 would wrap in int64)
    fast = make_catalog(n=3, seed=3)
    fast = fast.replace(velocities=np.full((3, 3), 1e19))
    with pytest.raises(CatalogError, match="velocities too large"):
        hdf5.write([fast], tmp_path / "fast.h5", packed=True)
    with pytest.raises(CatalogError, match="position_decimals"):
        hdf5.write([make_catalog()], tmp_path / "neg.h5", packed=True, position_decimals=-1)
    assert not (tmp_path / "fast.h5").exists() and not (tmp_path / "neg.h5").exists()
