"""The t-interval of benchmarks/pairs.py against values computed elsewhere."""

import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).parents[2] / 'benchmarks' / 'pairs.py'
_SPEC = importlib.util.spec_from_file_location('bench_pairs', _PATH)
pairs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pairs)


@pytest.mark.parametrize('df, expected', [
    (1, 12.706), (4, 2.776), (9, 2.262), (30, 2.042),
    # scipy.stats.t.ppf(0.975, df)
    (31, 2.0395), (40, 2.0211), (60, 2.0003), (120, 1.9799), (1000, 1.9623)])
def test_the_t_quantile(df, expected):
    assert pairs.t975(df) == pytest.approx(expected, abs=2e-4)


def test_the_interval_of_known_samples():
    # R: t.test(c(1, 1.1, 0.9, 1.05, 0.95))$conf.int -> 0.9018394 1.0981606
    mean, low, high = pairs.mean_interval([1.0, 1.1, 0.9, 1.05, 0.95])
    assert (mean, low, high) == pytest.approx((1.0, 0.9018394, 1.0981606), abs=2e-4)


def test_identical_samples_have_no_spread():
    assert pairs.mean_interval([1.02] * 10) == pytest.approx((1.02, 1.02, 1.02))


def test_one_sample_is_not_an_interval():
    with pytest.raises(ValueError, match='at least 2 samples'):
        pairs.mean_interval([1.0])
