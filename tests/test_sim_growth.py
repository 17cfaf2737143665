"""Linear growth functions and the FastPM integrator (lssviewer.sim.growth, lssviewer.sim.pm.fastpm_kdk)."""

from __future__ import annotations

import numpy as np
import pytest

from lssviewer.cosmology import Cosmology
from lssviewer.sim.growth import Growth, velocity_factor
from lssviewer.sim.pm import fastpm_kdk


@pytest.mark.parametrize("omega_m", [0.1, 0.3175, 0.5])
def test_growth_factor_matches_colossus(omega_m):
    # Independent computation: colossus evaluates the same flat LambdaCDM growth integral through an
    # interpolation table accurate to ~1e-5 (measured differences <= 1.5e-5), hence 5e-5.
    growth = Growth(omega_m)
    cosmo = Cosmology(omega_m=omega_m, sigma_8=0.8)
    for z in (0.0, 0.5, 2.0, 9.0, 30.0):
        assert growth.d1(1 / (1 + z)) == pytest.approx(float(cosmo.growth_factor(z)), rel=5e-5)


def _growth_ode(omega_m, a_out):
    """D and dD/da from the growth ODE D'' + (3/a + E'/E) D' = 1.5 Om D / (a^5 E^2), D = a early on."""
    from scipy.integrate import solve_ivp

    def efunc(a):
        return np.sqrt(omega_m / a**3 + 1 - omega_m)

    def rhs(a, y):
        de = -1.5 * omega_m / (a**4 * efunc(a))
        return [y[1], 1.5 * omega_m * y[0] / (a**5 * efunc(a) ** 2) - (3 / a + de / efunc(a)) * y[1]]

    a0 = 1e-4  # deep in matter domination, where D = a is the growing mode to O(a^3 (1-Om)/Om) ~ 1e-12
    sol = solve_ivp(rhs, [a0, a_out], [a0, 1.0], rtol=1e-12, atol=1e-16)
    return sol.y[0, -1], sol.y[1, -1]


def test_growth_rate_and_second_order():
    growth = Growth(0.3)
    for z in (0.0, 0.5, 3.0):
        # independent: direct integration of the growth ODE (tolerance 1e-12, so 1e-7 is generous)
        a = 1 / (1 + z)
        d, dd = _growth_ode(0.3, a)
        assert growth.f1(a) == pytest.approx(a * dd / d, rel=1e-7)
    # Matter domination: D2 -> -3/7 D^2 and f2 -> 2 (Omega_m(a) -> 1 at high z)
    a = 1e-3
    assert growth.d2(a) / growth.d1(a) ** 2 == pytest.approx(-3 / 7, rel=1e-4)
    assert growth.f2(a) == pytest.approx(2.0, rel=1e-4)
    # the growth equation d(G_p)/da = 1.5 Omega_m D / (a^2 E) checked by finite differences
    for a in (0.1, 0.4, 0.9):
        eps = 1e-5
        lhs = (growth.gp(a + eps) - growth.gp(a - eps)) / (2 * eps)
        rhs = 1.5 * 0.3 * growth.d1(a) / (a**2 * growth.efunc(a))
        assert lhs == pytest.approx(rhs, rel=1e-6)
    assert velocity_factor(0.5) == pytest.approx(200.0)


class LinearForceBackend:
    """A mock particle mesh whose force is the linear-theory force F = x - q (the current displacement)."""

    def __init__(self, q):
        self.q = q

    def kick(self, pos, mom, factor):
        mom += factor * (pos - self.q)

    def drift(self, pos, mom, factor):
        pos += factor * mom


@pytest.mark.parametrize("steps", [1, 2, 5, 40])
def test_fastpm_kdk_linear_growth_exact_at_any_step_count(steps):
    # FastPM's kick/drift factors make a linear displacement grow exactly as D(a) whatever the step
    # count (Feng et al. 2016): start on the growing mode x = q + D(a0) s, p = G_p(a0) s and compare with
    # D(a1)/D(a0) after the run. Only float64 rounding remains (1e-10).
    rng = np.random.default_rng(0)
    growth = Growth(0.3175)
    a0, a1 = 0.1, 1 / 1.5
    q = rng.uniform(0, 100, (50, 3))
    s = rng.normal(size=(50, 3))
    pos = q + growth.d1(a0) * s
    mom = growth.gp(a0) * s
    fastpm_kdk(LinearForceBackend(q), pos, mom, growth, a0, a1, steps)
    np.testing.assert_allclose(pos - q, growth.d1(a1) * s, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mom, growth.gp(a1) * s, rtol=1e-10, atol=1e-12)


def test_plain_leapfrog_is_not_exact():
    # The same one-step run with textbook KDK factors (integrals of 1/(a^3 E) and 1.5 Om/(a^2 E) taken
    # at the midpoint) misses linear growth by several per cent: the test above is sharp.
    growth = Growth(0.3175)
    a0, a1 = 0.1, 1 / 1.5
    ah = 0.5 * (a0 + a1)
    s = 1.0
    x = growth.d1(a0) * s
    p = growth.gp(a0) * s
    p += 1.5 * 0.3175 * x / (a0**2 * growth.efunc(a0)) * (ah - a0)
    x += p / (ah**3 * growth.efunc(ah)) * (a1 - a0)
    assert abs(x / growth.d1(a1) - 1) > 0.05
