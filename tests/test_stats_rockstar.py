"""Statistics of a real, strongly clustered Rockstar catalog (25 Mpc/h box, z = 0, 4764 halos).

Expectations from the physics of small-scale clustering, not from earlier runs of this code:
halos cluster strongly (xi of a few at 1 Mpc/h, falling with r), fall towards each other
(v12 of order -100 km/s at 1-2 Mpc/h), leave voids (kNN-CDFs below the Poisson law at the same
density), have P(k) far above the shot noise at low k, and show Fingers of God (redshift-space
monopole below the real-space xi on small scales, positive small-scale quadrupole).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from lssviewer import io, stats


@pytest.fixture
def halos(rockstar_path):
    (cat,) = io.load(rockstar_path)
    assert cat.box_size == 25.0 and cat.n_halos == 4764
    return cat


def test_strong_small_scale_clustering(halos):
    edges = np.array([0.3, 0.5, 0.8, 1.2, 2.0, 3.0, 5.0])
    res = stats.compute("xi", halos, edges=edges)
    xi, err = res.values[""][0], res.errors[""][0]
    at_1mpc = xi[2]  # (0.8, 1.2] Mpc/h
    assert 2.0 < at_1mpc < 10.0  # "a few"
    assert np.all(np.diff(xi) < 0)  # falls monotonically with separation
    assert np.all(xi > 5 * err)  # positive everywhere below 5 Mpc/h, significantly


def test_infall_pairwise_velocity(halos):
    res = stats.compute("pairwise", halos, edges=[0.5, 1.0, 1.5, 2.0, 3.0])
    v12, err = res.values[""][0], res.errors[""][0]
    assert np.all((v12[1:3] > -200.0) & (v12[1:3] < -50.0))  # about -100 km/s at 1-2 Mpc/h
    assert np.all(v12 < -5 * err)  # infall at every separation, significantly


def test_voids_lower_the_knn_cdfs(halos):
    # a clustered field leaves more space empty than a Poisson field of the same density
    res = stats.compute("knn", halos, ks=(1, 4), n_random=100_000, seed=0)
    p = 4.0 / 3.0 * np.pi * res.centers**3 / halos.volume
    for k in (1, 4):
        deficit = res.values[str(k)][0] - sps.binom.sf(k - 1, halos.n_halos, p)
        assert deficit.min() < -0.2


def test_power_far_above_shot_noise_and_fingers_of_god(halos):
    pk = stats.compute("pk", halos, mesh=64)
    shot = pk.meta["shot_noise"]
    assert shot == pytest.approx(25.0**3 / 4764)
    low = pk.centers < 1.0
    assert np.all(pk.values["0"][0][low] > 5 * shot)
    edges = np.array([0.5, 1.0, 2.0])
    real = stats.compute("xi", halos, edges=edges).values[""][0]
    rsd = stats.compute("xi-rsd", halos, edges=edges, los="z")
    assert np.all(rsd.values["0"][0] < real)  # virial motions smear small-scale pairs along the LOS
    assert np.all(rsd.values["2"][0] > 5 * rsd.errors["2"][0])  # elongated along the LOS


def test_mass_function_is_monotonic_and_counts_all_halos(halos):
    res = stats.compute("hmf", halos)
    cum = res.values["cumulative"][0]
    assert np.all(np.diff(cum) <= 0)
    total = np.sum(res.values["differential"][0] * np.diff(res.edges)) * halos.volume
    assert total == pytest.approx(halos.n_halos)
