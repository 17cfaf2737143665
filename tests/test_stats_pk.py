"""Power spectrum multipoles: Poisson shot noise, normalisation and the Kaiser effect.

Independent references: the Poisson shot noise V/N and its aliasing sum (brute-force sums over
images), the input power spectrum of a Zel'dovich test field, and the linear Kaiser (1987)
redshift-space multipoles of that field.
"""

from __future__ import annotations

import numpy as np
import pytest

from lssviewer import Cosmology, HaloCatalog, stats
from lssviewer.stats.pk import PowerSpectrumPlan, _alias_sums, paint


def _poisson_catalog(n: int, box: float, seed: int) -> HaloCatalog:
    rng = np.random.default_rng(seed)
    return HaloCatalog(rng.uniform(0, box, (n, 3)), rng.normal(0, 300, (n, 3)), np.full(n, 1e13), box, 0.5,
                       Cosmology(0.3, 0.8))


@pytest.mark.parametrize("assignment", ["cic", "tsc"])
def test_paint_conserves_points_and_wraps(assignment):
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 10.0, (500, 3))
    pos[:5] = 10.0 - 1e-9  # at the far edge: their weight must wrap to cell 0
    grid = paint(pos, 10.0, 8, assignment)
    assert grid.sum() == pytest.approx(500.0, rel=1e-12)
    assert grid.min() >= 0.0
    # a point exactly on a mesh node (CIC) puts all its weight there
    one = paint(np.array([[2.5, 5.0, 7.5]]), 10.0, 4, "cic")
    assert one[1, 2, 3] == pytest.approx(1.0)


@pytest.mark.parametrize("p", [2, 3])
def test_alias_sums_match_brute_force(p):
    # Jing (2005) closed forms vs a direct sum over 2 x 2000 + 1 images (tail < 1e-13); the code
    # sums the alternating series over |m| <= 256, whose tail is below 1e-11.
    x = np.linspace(-0.5, 0.5, 33)
    m = np.arange(-2000, 2001)
    terms = np.sinc(x[:, None] + m[None, :]) ** (2 * p)
    plain, alternating = _alias_sums(x, p)
    np.testing.assert_allclose(plain, terms.sum(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alternating, terms @ np.where(m % 2 == 0, 1.0, -1.0), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("assignment,interlace", [("cic", False), ("tsc", False), ("cic", True)])
def test_poisson_sample_power_is_its_shot_noise(assignment, interlace):
    # For a Poisson sample every Fourier mode has <|delta|^2>/V = (1/n) sum_images W^2 / W^2
    # (Jing 2005): the shot-noise-subtracted multipoles must vanish within their Gaussian errors
    # (each |delta_k|^2 is exponential, so a bin mean of N_modes/2 independent modes has relative
    # error sqrt(2/N_modes), which is what the code reports) all the way to 0.95 k_N. chi^2 over
    # 15 bins x 3 multipoles must match its 45 dof within 4.5 sigma of the chi^2 law (sqrt(2 dof)).
    n, box, mesh = 20_000, 500.0, 64
    kf, k_nyq = 2 * np.pi / box, np.pi * mesh / box
    edges = kf * (0.5 + 2 * np.arange(16))  # up to 0.95 k_N, bins of 2 k_f
    assert edges[-1] < k_nyq
    cat = _poisson_catalog(n, box, seed=7)
    res = stats.compute("pk", cat, edges=edges, mesh=mesh, assignment=assignment, interlace=interlace)
    raw = stats.compute("pk", cat, edges=edges, mesh=mesh, assignment=assignment, interlace=interlace,
                        subtract_shot_noise=False)
    shot = box**3 / n
    assert res.meta["shot_noise"] == pytest.approx(shot)

    def chi2(values: dict) -> float:
        return sum(float(np.sum((values[ell][0] / res.errors[ell][0]) ** 2)) for ell in ("0", "2", "4"))

    dof = 3 * (len(edges) - 1)
    assert abs(chi2(res.values) - dof) < 4.5 * np.sqrt(2 * dof)
    # the raw monopole equals the shot noise V/N where the aliasing sum is ~1 (k < k_N/4):
    # mode-weighted mean ratio within 4 sigma (sigma = sqrt(2 / N_modes)) plus the 1 % that the
    # aliasing sum still differs from 1 there.
    modes = res.meta["n_modes"]
    low = res.centers < 0.25 * k_nyq
    ratio = np.sum(modes[low] * raw.values["0"][0][low]) / np.sum(modes[low]) / shot
    assert ratio == pytest.approx(1.0, abs=4.0 * np.sqrt(2.0 / modes[low].sum()) + 0.01)
    if not interlace:
        # the test has power: subtracting a plain 1/n instead of the aliased shot noise fails it
        # (measured chi^2 = 780 for CIC, 260 for TSC)
        naive = {ell: raw.values[ell] - (shot if ell == "0" else 0.0) for ell in ("0", "2", "4")}
        assert chi2(naive) > dof + 10 * np.sqrt(2 * dof)


def test_shot_noise_factor_is_one_at_low_k_and_reported():
    plan = PowerSpectrumPlan(1000.0, np.array([0.005, 0.02, 0.2]), mesh=128, assignment="cic")
    # S(k) -> 1 as k -> 0; at k_N/2 (0.2) it exceeds 1 by a few per cent along the axes
    assert plan.shot_factor[0][0] == pytest.approx(1.0, abs=2e-3)
    assert 1.0 < plan.shot_factor[0][1] < 1.05


# ---------------------------------------------------------------------------------------------
# Zel'dovich test field with fixed amplitudes (|delta_k|^2 = P(k) exactly, random phases).


def _input_power(k: np.ndarray) -> np.ndarray:
    """A smooth, peaked test spectrum in (Mpc/h)^3 (its shape is irrelevant to the checks)."""
    return 2e4 * (k / 0.02) / (1.0 + (k / 0.02) ** 2.4)


def _zeldovich_field(n: int = 64, box: float = 1000.0, amp: float = 0.1, seed: int = 42):
    """Lattice of n^3 particles displaced by psi_k = i k / k^2 delta_k (so delta = -div psi),
    velocities v = f a H psi (linear theory), at z = 0.5 in an Om = 0.3 cosmology.

    ``amp`` scales delta: with 0.1 the rms displacement is 0.34 Mpc/h, so the Zel'dovich
    non-linear terms (k^2 sigma_psi^2 < 1e-3 at k = 0.1) are negligible. The lattice points sit
    at the centres of cells of the 128^3 mesh used below, where CIC responds linearly to
    displacements smaller than half a cell (3.9 Mpc/h); a lattice has no shot noise, so none is
    subtracted.
    """
    rng = np.random.default_rng(seed)
    kf = 2 * np.pi / box
    ii = np.fft.fftfreq(n, 1.0 / n)
    iz = np.arange(n // 2 + 1)
    kx, ky, kz = np.meshgrid(ii * kf, ii * kf, iz * kf, indexing="ij")
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    white = np.fft.rfftn(rng.normal(size=(n, n, n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta_k = white / np.abs(white) * n**3 * np.sqrt(_input_power(k) / box**3) * amp
    nyquist = (np.abs(ii)[:, None, None] == n // 2) | (np.abs(ii)[None, :, None] == n // 2) | (iz == n // 2)
    delta_k[nyquist] = 0.0
    delta_k[0, 0, 0] = 0.0
    psi = []
    for kc in (kx, ky, kz):
        with np.errstate(divide="ignore", invalid="ignore"):
            comp = 1j * kc / k**2 * delta_k
        comp[0, 0, 0] = 0.0
        psi.append(np.fft.irfftn(comp, s=(n, n, n), axes=(0, 1, 2)).ravel())
    psi = np.stack(psi, axis=1)
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    q = (grid + 0.25) * box / n  # centres of the cells of a 2n mesh
    z = 0.5
    cosmo = Cosmology(0.3, 0.8)
    f = cosmo.omega_m_z(z) ** 0.55  # any f works: the test field defines it
    a_hubble = 100.0 * np.sqrt(0.3 * 1.5**3 + 0.7) / 1.5  # a H(z) in h km/s/Mpc, written out
    cat = HaloCatalog(q + psi, f * a_hubble * psi, np.full(n**3, 1e12), box, z, cosmo, wrap=True)
    return cat, f, amp**2


def _grid_expectation(edges, box, mesh, f, amp2, los):
    """Linear theory on the same discrete modes: P_l = (2l+1) < (1 + f mu^2)^2 P(k) L_l(mu) >,
    averaged over the rfft modes of each bin (mirror modes counted twice)."""
    from numpy.polynomial.legendre import legval

    kf = 2 * np.pi / box
    ii = np.fft.fftfreq(mesh, 1.0 / mesh)
    iz = np.arange(mesh // 2 + 1)
    kx, ky, kz = np.meshgrid(ii * kf, ii * kf, iz * kf, indexing="ij")
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    w = np.broadcast_to(np.where((iz == 0) | (iz == mesh // 2), 1.0, 2.0), k.shape)
    b = np.searchsorted(edges, k, side="right") - 1
    ok = (k > 0) & (b >= 0) & (b < len(edges) - 1)
    mu = {"x": kx, "y": ky, "z": kz}[los][ok] / k[ok]
    p = _input_power(k[ok]) * amp2
    nmodes = np.bincount(b[ok], w[ok])
    out = {"real": np.bincount(b[ok], w[ok] * p) / nmodes}
    for ell in (0, 2, 4):
        leg = legval(mu, np.eye(5)[ell])
        out[ell] = np.bincount(b[ok], w[ok] * (2 * ell + 1) * (1 + f * mu**2) ** 2 * p * leg) / nmodes
    return out, nmodes


@pytest.fixture(scope="module")
def zeldovich():
    return _zeldovich_field()


@pytest.mark.parametrize("los", ["z", "x"])
def test_kaiser_multipoles_of_a_linear_field(zeldovich, los):
    cat, f, amp2 = zeldovich
    box, mesh = cat.box_size, 128
    # k_f/2 .. 0.05 h/Mpc = k_N/4 of the particle lattice. Beyond, the lattice's discreteness
    # adds a smooth, grid-anisotropic term growing like k^2 (measured at k = 0.094: +1.0 % in
    # P0, +2.9 % in P2, +0.05 P0 in P4), which is not what this test is about.
    edges = np.arange(0.5, 8.5) * 2 * np.pi / box
    real = stats.compute("pk", cat, edges=edges, mesh=mesh, subtract_shot_noise=False, los=los)
    red = stats.compute("pk", cat, edges=edges, mesh=mesh, subtract_shot_noise=False, los=los, rsd=True)
    expect, nmodes = _grid_expectation(edges, box, mesh, f, amp2, los)
    # 1) normalisation: real-space P(k) equals the input spectrum on the same modes (measured
    # deviation <= 0.25 %, the lattice term above: 0.5 %).
    np.testing.assert_allclose(real.values["0"][0], expect["real"], rtol=0.005)
    # 2) per bin, linear theory on the same modes (measured: P0 0.25 %, P2 0.7 %, P4 0.014 P0).
    np.testing.assert_allclose(red.values["0"][0], expect[0], rtol=0.005)
    np.testing.assert_allclose(red.values["2"][0], expect[2], rtol=0.015)
    np.testing.assert_allclose(red.values["4"][0] / expect[0], expect[4] / expect[0], atol=0.025)
    # the real-space quadrupole of an isotropic field vanishes (measured < 1e-3 of P0)
    np.testing.assert_allclose(real.values["2"][0] / expect["real"], 0.0, atol=0.005)
    # 3) Kaiser (1987) in the continuum: P0/P = 1 + 2f/3 + f^2/5 (mode by mode the monopole boost
    # is the mu-average, so it holds per bin to the per-bin accuracy above, 1 %);
    # P2/P0 = (4f/3 + 4f^2/7) / (1 + 2f/3 + f^2/5) and P4/P0 = (8f^2/35) / (...) pooled over
    # 0.02 <= k <= 0.05 (1,612 modes, each weighted by 1/P). Finite mode sampling shifts the
    # pooled ratios of even a perfect measurement from the continuum by the grid expectation's
    # own offset (here -0.0024 and -0.019); the measurement must sit within 0.01 of the grid
    # expectation (the lattice term above) and hence within that offset + 0.01 of Kaiser.
    k0 = 1 + 2 * f / 3 + f**2 / 5
    kaiser = {2: (4 * f / 3 + 4 * f**2 / 7) / k0, 4: (8 * f**2 / 35) / k0}
    boost = red.values["0"][0] / real.values["0"][0]
    np.testing.assert_allclose(boost[2:], k0, rtol=0.01)
    sel = red.centers >= 0.02
    w = nmodes[sel] / expect["real"][sel]
    pooled = {ell: np.sum(w * red.values[str(ell)][0][sel]) for ell in (0, 2, 4)}
    grid = {ell: np.sum(w * expect[ell][sel]) for ell in (0, 2, 4)}
    for ell in (2, 4):
        measured, on_grid = pooled[ell] / pooled[0], grid[ell] / grid[0]
        assert measured == pytest.approx(on_grid, abs=0.01)
        assert abs(measured - kaiser[ell]) <= abs(on_grid - kaiser[ell]) + 0.01


def test_pk_options_and_errors():
    cat = _poisson_catalog(2000, 200.0, seed=3)
    res = stats.compute("pk", cat, mesh=32, interlace=True, assignment="tsc", ells=(0, 2))
    assert res.components == ["0", "2"]
    assert res.meta["interlace"] is True and res.meta["assignment"] == "tsc"
    # default bins reach the Nyquist frequency with interlacing, half of it without
    assert res.edges[-1] <= np.pi * 32 / 200.0 + 1e-12
    assert stats.compute("pk", cat, mesh=32).edges[-1] <= 0.5 * np.pi * 32 / 200.0 + 1e-12
    from lssviewer.errors import CatalogError, ParameterError

    with pytest.raises(ParameterError, match="mesh"):
        stats.compute("pk", cat, mesh=31)
    with pytest.raises(ParameterError, match="assignment"):
        stats.compute("pk", cat, assignment="pcs")
    no_cosmo = cat.replace(cosmology=None)
    with pytest.raises(CatalogError, match="cosmology"):
        stats.compute("pk", no_cosmo, rsd=True, mesh=16)
