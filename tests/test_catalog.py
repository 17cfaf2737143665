"""HaloCatalog validation and helpers."""

import numpy as np
import pytest
from conftest import make_catalog

from lssviewer import Cosmology, HaloCatalog
from lssviewer.errors import CatalogError, ParameterError


def _arrays(n=5, box=10.0):
    rng = np.random.default_rng(1)
    return rng.uniform(0, box, (n, 3)), rng.normal(size=(n, 3)), np.full(n, 1e12)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"positions": np.full((5, 3), np.nan)}, "non-finite"),
        ({"velocities": np.full((5, 3), np.inf)}, "non-finite"),
        ({"masses": -np.ones(5)}, "masses must be > 0"),
        ({"masses": np.ones(4)}, "inconsistent lengths"),
        ({"positions": np.ones((5, 2))}, "shape"),
        ({"positions": np.full((5, 3), 10.0)}, "outside the box"),
        ({"positions": np.full((5, 3), -0.1)}, "outside the box"),
        ({"box_size": -1.0}, "box_size"),
        ({"box_size": float("nan")}, "box_size"),
        ({"redshift": -0.5}, "redshift"),
        ({"positions": [["a", "b", "c"]] * 5}, "not numeric"),
    ],
)
def test_validation_messages(change, message):
    pos, vel, mass = _arrays()
    kwargs = dict(positions=pos, velocities=vel, masses=mass, box_size=10.0)
    kwargs.update(change)
    with pytest.raises(CatalogError, match=message) as err:
        HaloCatalog(**kwargs)
    assert "\n" not in str(err.value)


def test_wrap_maps_into_box():
    pos, vel, mass = _arrays()
    pos[0] = [-1.0, 10.0, 23.0]
    cat = HaloCatalog(pos, vel, mass, 10.0, wrap=True)
    np.testing.assert_allclose(cat.positions[0], [9.0, 0.0, 3.0])
    assert cat.positions.min() >= 0 and cat.positions.max() < 10.0


def test_arrays_are_read_only_copies():
    pos, vel, mass = _arrays()
    cat = HaloCatalog(pos, vel, mass, 10.0)
    pos[0, 0] = 5.5  # the caller's array stays writable and the catalog keeps its own copy
    assert cat.positions[0, 0] != 5.5
    assert not np.shares_memory(cat.positions, pos)
    with pytest.raises(ValueError):
        cat.positions[0, 0] = 1.0


def test_top_n_and_log_mass():
    cat = make_catalog(n=100)
    top = cat.top_n(10)
    assert len(top) == 10
    assert np.all(np.diff(top.masses) <= 0)
    assert top.masses[-1] >= np.sort(cat.masses)[-10]
    np.testing.assert_allclose(cat.log10_mass, np.log10(cat.masses))


def test_redshift_space_shift_matches_formula():
    """s = x + v/(aH) with H(z) = 100 E(z): at z=0.5, Om=0.3, E = sqrt(0.3*3.375 + 0.7)."""
    cosmo = Cosmology(0.3, 0.8)
    pos = np.array([[50.0, 50.0, 50.0]])
    vel = np.array([[0.0, 0.0, 500.0]])
    cat = HaloCatalog(pos, vel, np.array([1e13]), 100.0, redshift=0.5, cosmology=cosmo)
    a_h = 100 * np.sqrt(0.3 * 1.5**3 + 0.7) / 1.5
    s = cat.redshift_space_positions("z")
    np.testing.assert_allclose(s[0], [50, 50, 50 + 500 / a_h])
    # periodic wrap
    vel = np.array([[0.0, -2e4, 0.0]])
    cat = HaloCatalog(pos, vel, np.array([1e13]), 100.0, redshift=0.5, cosmology=cosmo)
    s = cat.redshift_space_positions(1)
    assert 0 <= s[0, 1] < 100
    np.testing.assert_allclose(s[0, 1], (50 - 2e4 / a_h) % 100)


def test_array_round_trip():
    cat = make_catalog()
    back = HaloCatalog.from_array(cat.to_array(), cat.box_size, redshift=cat.redshift, cosmology=cat.cosmology)
    assert back.equals(cat)


def test_cosmology_validation_and_background():
    with pytest.raises(ParameterError):
        Cosmology(omega_m=-0.1)
    with pytest.raises(ParameterError):
        Cosmology(omega_m=0.3, sigma_8=0.0)
    c = Cosmology(0.3, 0.8)
    assert c.hubble(0.0) == pytest.approx(100.0)
    assert c.efunc(1.0) == pytest.approx(np.sqrt(0.3 * 8 + 0.7))


def test_growth_matches_integral():
    """D(z) for flat LCDM equals the Heath (1977) integral D ~ E(a) int da/(a E)^3, normalised at z=0."""
    from scipy.integrate import quad

    c = Cosmology(0.3, 0.8)

    def d_unnorm(a):
        e = lambda x: np.sqrt(0.3 / x**3 + 0.7)  # noqa: E731
        return e(a) * quad(lambda x: 1.0 / (x * e(x)) ** 3, 1e-8, a)[0]

    for z in (0.5, 1.0, 3.0):
        expected = d_unnorm(1 / (1 + z)) / d_unnorm(1.0)
        assert c.growth_factor(z) == pytest.approx(expected, rel=1e-3)
    # growth rate ~ Omega_m(z)^0.55 (Linder 2005) to better than 1 % for LCDM
    assert c.growth_rate(0.5) == pytest.approx(c.omega_m_z(0.5) ** 0.55, rel=0.01)
