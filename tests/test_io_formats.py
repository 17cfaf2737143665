"""Readers and writers of every format: real data, round trips and the Quijote binary layout."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import make_catalog

from lssviewer import io
from lssviewer.io import hdf5, quijote


def test_rockstar_real_file(rockstar_path):
    (cat,) = io.load(rockstar_path)
    assert io.detect_format(rockstar_path).name == "rockstar"
    assert len(cat) == 4764
    assert cat.box_size == 25.0 and cat.redshift == 0.0
    assert cat.cosmology.omega_m == pytest.approx(0.308) and cat.cosmology.h == pytest.approx(0.6781)
    assert cat.cosmology.sigma_8 is None  # Rockstar headers do not state sigma_8
    # first data row of the file: Mvir 1.2482e+11, X Y Z 3.14842 4.08677 1.44239, VX -194.94
    assert cat.masses[0] == 1.2482e11
    np.testing.assert_array_equal(cat.positions[0], [3.14842, 4.08677, 1.44239])
    np.testing.assert_array_equal(cat.velocities[0], [-194.94, 4.07, -39.48])
    # another mass definition, chosen by column name
    (m200c,) = io.load(rockstar_path, mass_column="M200c")
    assert m200c.masses[0] == 1.0699e11
    # halos whose M200c Rockstar left undefined (0) are dropped and counted
    dropped = m200c.provenance["dropped_zero_mass"]
    assert dropped > 0 and len(m200c) == 4764 - dropped


def test_rockstar_chain_keeps_every_value(rockstar_path, tmp_path):
    """Rockstar -> HDF5 -> CSV -> NPZ -> HDF5 keeps every value and all metadata."""
    (orig,) = io.load(rockstar_path)
    chain = ["a.h5", "b.csv", "c.npz", "d.hdf5"]
    current = orig
    for name in chain:
        io.save(current, tmp_path / name)
        (current,) = io.load(tmp_path / name)
        assert current.equals(orig), name
        assert current.name == orig.name
        assert current.provenance == orig.provenance
    np.testing.assert_array_equal(current.positions, orig.positions)
    np.testing.assert_array_equal(current.masses, orig.masses)


def test_hdf5_suite_schema_readable_with_plain_h5py(tmp_path):
    cats = [make_catalog(n=20 + i, seed=i, om=0.2 + 0.05 * i) for i in range(3)]
    path = tmp_path / "suite.h5"
    io.save(cats, path)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "lssviewer-halos" and f.attrs["format_version"] == 1
        assert f.attrs["n_catalogs"] == 3
        g = f["catalogs/000002"]
        assert g["positions"].shape == (22, 3) and g["positions"].attrs["units"].startswith("Mpc/h")
        assert g.attrs["omega_m"] == pytest.approx(0.3)
        assert json.loads(g.attrs["provenance"])["seed"] == 2
    back = io.load(path)
    assert [c.equals(o) for c, o in zip(back, cats, strict=True)] == [True] * 3
    assert hdf5.read_cosmologies(path)[1].omega_m == pytest.approx(0.25)


def test_hdf5_append_and_float32(tmp_path):
    path = tmp_path / "suite.h5"
    box = 100.0
    cat = make_catalog(n=30, box=box)
    # a position just below L that float32 rounds up to L must still load
    pos = cat.positions.copy()
    pos[0, 0] = np.nextafter(box, 0)
    cat = cat.replace(positions=pos)
    assert hdf5.append([cat], path, dtype="float32") == 1
    assert hdf5.append([make_catalog(seed=5), make_catalog(seed=6)], path, dtype="float32") == 3
    back = io.load(path)
    assert len(back) == 3 and back[0].positions.max() < box
    np.testing.assert_allclose(back[0].velocities, cat.velocities, rtol=1e-6)
    assert hdf5.read(path, indices=[2])[0].provenance["seed"] == 6


def test_hdf5_packed_layout_round_trip(tmp_path):
    """Packed suites: fixed-point positions / velocities within half a unit of the last decimal, masses and
    metadata exact, the [0, L) invariant kept, readable with plain h5py, and appends stay packed."""
    box = 100.0
    cats = [make_catalog(n=20 + 5 * i, box=box, seed=i, om=0.2 + 0.05 * i) for i in range(3)]
    pos = cats[0].positions.copy()
    pos[0, 0] = box - 1e-5  # rounds up to L: must wrap to 0 on the torus
    cats[0] = cats[0].replace(positions=pos)
    cats.append(make_catalog(n=7, box=box, seed=9).replace(cosmology=None))
    path = tmp_path / "packed.h5"
    hdf5.write(cats, path, packed=True, position_decimals=3, velocity_decimals=1)
    assert hdf5.is_packed(path) and hdf5.count(path) == 4
    back = io.load(path)
    for c, o in zip(back, cats, strict=True):
        d = np.abs(c.positions - o.positions)
        d = np.minimum(d, box - d)  # periodic separation (the wrapped halo)
        assert d.max() <= 0.5e-3 + 1e-9
        assert np.abs(c.velocities - o.velocities).max() <= 0.05 + 1e-9
        np.testing.assert_array_equal(c.masses, o.masses.astype(np.float32))
        assert (c.name, c.provenance, c.box_size, c.redshift) == (o.name, o.provenance, o.box_size, o.redshift)
        assert c.cosmology == o.cosmology
    assert back[0].positions[0, 0] == 0.0 and back[0].positions.max() < box
    assert hdf5.read(path, indices=[-1])[0].cosmology is None
    assert [c is None for c in hdf5.read_cosmologies(path)] == [False, False, False, True]
    assert hdf5.read_cosmologies(path)[2].omega_m == pytest.approx(0.3)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 2 and f.attrs["layout"] == "packed"
        g = f["packed"]
        assert g["positions"].dtype == np.int32 and g["positions"].attrs["scale"] == pytest.approx(1e-3)
        assert list(g["offsets"][()]) == [0, 20, 45, 75, 82]
    # appending keeps the layout and its rounding; re-rounding the stored values changes nothing
    assert hdf5.append([make_catalog(n=5, box=box, seed=20)], path) == 5
    again = io.load(path)
    assert hdf5.is_packed(path) and len(again) == 5
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(again[:4], back, strict=True))
    assert np.abs(again[4].velocities - make_catalog(n=5, box=box, seed=20).velocities).max() <= 0.05 + 1e-9


def test_convert_packed_cli(tmp_path, capsys):
    from lssviewer.cli import main

    src = tmp_path / "suite.h5"
    io.save([make_catalog(n=30, seed=i) for i in range(4)], src)
    out = tmp_path / "packed.h5"
    assert main(["convert", str(src), str(out), "--packed", "--position-decimals", "2"]) == 0
    assert hdf5.is_packed(out) and hdf5.count(out) == 4
    assert np.abs(io.load(out)[3].positions - io.load(src)[3].positions).max() <= 0.005 + 1e-9
    assert main(["convert", str(src), str(tmp_path / "x.csv"), "--packed"]) != 0
    assert "--packed needs an HDF5 output" in capsys.readouterr().err


def test_cm23_layout_round_trip(tmp_path):
    cats = [make_catalog(n=40, seed=i, om=0.15 + 0.1 * i, s8=0.7 + 0.05 * i) for i in range(3)]
    path = tmp_path / "train_halos.npy"
    io.save(cats, path)
    assert (tmp_path / "train_cosmology.csv").exists()
    arr = np.load(path, allow_pickle=False)
    assert arr.shape == (3, 40, 7)
    back = io.load(path)
    for b, c in zip(back, cats, strict=True):
        assert b.equals(c)


def test_cm23_log_mass_and_quijote_defaults(tmp_path):
    """CM23-style arrays with log10 M and a cosmology CSV without box: Quijote box and z assumed."""
    rng = np.random.default_rng(0)
    arr = np.concatenate([rng.uniform(0, 1000, (2, 10, 3)), rng.normal(0, 300, (2, 10, 3)),
                          rng.uniform(13, 15, (2, 10, 1))], axis=2)
    np.save(tmp_path / "x_halos.npy", arr)
    (tmp_path / "x_cosmology.csv").write_text("Omega_m,Omega_b,h,n_s,sigma_8\n0.3,0.05,0.7,0.96,0.8\n"
                                              "0.2,0.05,0.7,0.96,0.9\n")
    cats = io.load(tmp_path / "x_halos.npy")
    assert cats[1].cosmology.sigma_8 == 0.9 and cats[0].box_size == 1000.0 and cats[0].redshift == 0.5
    np.testing.assert_allclose(np.log10(cats[0].masses), arr[0, :, 6])


def _write_quijote(directory, cats_kpc, nfiles):
    """Write a catalog split over ``nfiles`` group_tab files in the published binary layout."""
    pos, vel, mass, lens = cats_kpc
    parts = np.array_split(np.arange(len(mass)), nfiles)
    directory.mkdir()
    for i, idx in enumerate(parts):
        quijote.write_tab(directory / f"group_tab_003.{i}", pos[idx], vel[idx], mass[idx], lens[idx],
                          n_files=nfiles, tot_groups=len(mass))


def test_quijote_fof_binary(tmp_path):
    rng = np.random.default_rng(3)
    n = 25
    pos = rng.uniform(0, 1e6, (n, 3)).astype("f4")  # kpc/h
    vel = rng.normal(0, 200, (n, 3)).astype("f4")  # Gadget velocities
    mass = rng.uniform(1, 100, n).astype("f4")  # 1e10 Msun/h
    lens = rng.integers(20, 500, n)
    _write_quijote(tmp_path / "groups_003", (pos, vel, mass, lens), nfiles=3)
    for target in (tmp_path / "groups_003", tmp_path / "groups_003" / "group_tab_003.1"):
        (cat,) = io.load(target, omega_m=0.3175, sigma_8=0.834)
        assert len(cat) == n and cat.redshift == 0.5 and cat.box_size == 1000.0
        np.testing.assert_allclose(cat.positions, pos.astype(float) / 1e3)
        np.testing.assert_allclose(cat.velocities, vel.astype(float) * 1.5)  # * (1 + z)
        np.testing.assert_allclose(cat.masses, mass.astype(float) * 1e10)
        assert cat.cosmology.sigma_8 == 0.834
    # a truncated part is reported with its file name
    part = tmp_path / "groups_003" / "group_tab_003.2"
    part.write_bytes(part.read_bytes()[:-7])
    with pytest.raises(io.registry.FormatError, match=r"group_tab_003\.2.*does not match"):
        io.load(tmp_path / "groups_003")


def test_vtp_readable_by_vtk(tmp_path):
    vtk = pytest.importorskip("vtk")
    cat = make_catalog(n=12)
    io.save(cat, tmp_path / "c.vtp")
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(tmp_path / "c.vtp"))
    reader.Update()
    poly = reader.GetOutput()
    assert poly.GetNumberOfPoints() == 12 and poly.GetNumberOfVerts() == 12
    pts = np.array([poly.GetPoint(i) for i in range(12)])
    np.testing.assert_allclose(pts, cat.positions, rtol=1e-9)
    mass = poly.GetPointData().GetArray("mass")
    np.testing.assert_allclose([mass.GetValue(i) for i in range(12)], cat.masses, rtol=1e-9)


def test_foreign_csv_with_log_mass(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("# box_size = 50\nX,Y,Z,VX,VY,VZ,logM\n1,2,3,10,20,30,13.5\n4,5,6,-1,-2,-3,14\n")
    (cat,) = io.load(path)
    assert cat.box_size == 50 and len(cat) == 2 and cat.cosmology is None
    np.testing.assert_allclose(cat.masses, [10**13.5, 1e14])
