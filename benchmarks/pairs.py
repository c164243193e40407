"""The mean of paired ratios with its 95 % t-interval, without scipy.

Used by orchestration.py for its policy ratio: each pair is a batch with the
checks on and one with them off, run one after the other; the ratios of the
pairs are taken as independent samples.
"""

import math
import statistics

# The 0.975 quantile of Student's t with 1..30 degrees of freedom (any printed table).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df):
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError('a t-interval needs at least 2 samples')
    if df <= len(_T975):
        return _T975[df - 1]
    # Past the table, the Cornish-Fisher expansion around the normal quantile: within
    # 1e-4 of the exact value from 30 degrees of freedom on.
    z = statistics.NormalDist().inv_cdf(0.975)
    return (z + (z ** 3 + z) / (4.0 * df)
            + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96.0 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384.0 * df ** 3))


def mean_interval(values):
    """(mean, low, high): the mean of ``values`` and its two-sided 95 % t-interval."""
    values = list(values)
    if len(values) < 2:
        raise ValueError('a t-interval needs at least 2 samples, got %d' % len(values))
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half
