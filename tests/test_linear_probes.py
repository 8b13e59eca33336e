import numpy as np
import pytest

from ae_hubert.analysis.linear_probes import ridge_classifier_accuracy, ridge_r2


def data(n=2000, d=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, d))


def test_copy_of_the_input_has_r2_near_one():
    x, _ = data()
    assert ridge_r2(x[:1500], x[:1500], x[1500:], x[1500:]) == pytest.approx(1.0, abs=1e-3)
    # a rotated and scaled copy is still fully recoverable
    mix, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(20, 20)))
    assert ridge_r2(100 * x[:1500] @ mix, x[:1500], 100 * x[1500:] @ mix, x[1500:]) > 0.99


def test_unrelated_features_have_r2_near_zero():
    x, noise = data()
    assert abs(ridge_r2(noise[:1500], x[:1500], noise[1500:], x[1500:])) < 0.05


def test_classifier_accuracy_known_answers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=3000)
    centres = rng.normal(size=(5, 16)) * 5
    x = centres[y] + rng.normal(size=(3000, 16))
    assert ridge_classifier_accuracy(x[:2000], y[:2000], x[2000:], y[2000:]) > 0.95
    noise = rng.normal(size=(3000, 16))
    acc = ridge_classifier_accuracy(noise[:2000], y[:2000], noise[2000:], y[2000:])
    assert acc < 0.3  # chance is 0.2
