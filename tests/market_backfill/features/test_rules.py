"""The feature rules of features.md section 2, one small case each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from market_backfill.features.kernel import compute_features


def run(close, high=None, low=None, volume=None, session=None):
    close = np.asarray(close, dtype=float)
    n = len(close)
    high = close + 1 if high is None else np.asarray(high, dtype=float)
    low = close - 1 if low is None else np.asarray(low, dtype=float)
    volume = np.full(n, 10.0) if volume is None else np.asarray(volume, dtype=float)
    session = np.zeros(n, dtype=np.int64) if session is None else np.asarray(session)
    return compute_features(high, low, close, volume, session)


def nulls(values) -> list[int]:
    return np.flatnonzero(np.isnan(values)).tolist()


def test_first_bar_has_no_return_and_its_range_as_true_range():
    f = run([100.0, 102.0], high=[101.0, 103.0], low=[98.0, 101.5])
    assert math.isnan(f.ret_1[0])
    assert math.isnan(f.log_ret_1[0])
    assert f.tr[0] == 3.0
    assert f.ret_1[1] == 102.0 / 100.0 - 1
    assert f.log_ret_1[1] == math.log(102.0 / 100.0)
    assert f.tr[1] == 3.0  # |103 - 100|


def test_null_until_enough_bars():
    f = run(np.arange(60, dtype=float) + 100)
    assert nulls(f.atr_14) == list(range(13))
    assert nulls(f.rsi_14) == list(range(14))  # 14 changes need 15 bars
    assert nulls(f.ema_20) == list(range(19))
    assert nulls(f.sma_50) == list(range(49))
    assert nulls(f.vol_30) == list(range(30))  # 30 returns from the second bar
    assert nulls(f.volume_z_20) == list(range(60))  # constant volume: std 0


def test_rma_and_ema_seed_with_the_simple_mean():
    close = np.array([float(x) for x in (5, 7, 6, 9, 8, 12, 10, 11, 14, 13, 15, 17, 16, 18) * 2])
    f = run(close, high=close, low=close)
    tr = f.tr
    assert f.atr_14[13] == sum(tr[:14]) / 14
    assert f.atr_14[14] == (1 / 14) * tr[14] + (1 - 1 / 14) * f.atr_14[13]
    assert f.ema_20[19] == sum(close[:20]) / 20
    a = 2 / 21
    assert f.ema_20[20] == a * close[20] + (1 - a) * f.ema_20[19]
    assert nulls(f.sma_50) == list(range(28))


@pytest.mark.parametrize(
    ("closes", "rsi"),
    [
        (np.arange(20.0) + 100, 100.0),  # only rises: rma(down) = 0
        (100 - np.arange(20.0), 0.0),  # only falls: rma(up) = 0
        (np.full(20, 100.0), 50.0),  # flat: both 0
    ],
)
def test_rsi_edge_cases(closes, rsi):
    f = run(closes)
    assert f.rsi_14[14:].tolist() == [rsi] * 6


def test_rsi_from_the_seeded_averages():
    closes = np.array([100, 101, 100, 102, 101, 103, 102, 104, 103, 105, 104, 106, 105, 107, 106.0])
    f = run(closes)
    ups = [max(b - a, 0) for a, b in zip(closes[:-1], closes[1:], strict=True)]
    downs = [max(a - b, 0) for a, b in zip(closes[:-1], closes[1:], strict=True)]
    up, down = sum(ups) / 14, sum(downs) / 14
    assert f.rsi_14[14] == 100 - 100 / (1 + up / down)


def test_session_vwap_resets_at_each_session_and_is_null_without_volume():
    close = np.array([10.0, 12.0, 20.0, 22.0, 30.0])
    f = run(
        close,
        high=close,
        low=close,
        volume=[1, 3, 0, 0, 2],
        session=[1, 1, 2, 2, 2],
    )
    assert f.vwap_session[0] == 10.0
    assert f.vwap_session[1] == (10.0 * 1 + 12.0 * 3) / 4
    assert nulls(f.vwap_session) == [2, 3]  # the new session has no volume yet
    assert f.vwap_session[4] == 30.0


def test_volume_z_uses_the_population_std_of_its_window():
    volume = np.arange(1.0, 21.0)
    f = run(np.full(20, 100.0), volume=volume)
    mean = volume.mean()
    std = math.sqrt(sum((v - mean) ** 2 for v in volume) / 20)
    assert f.volume_z_20[19] == pytest.approx((20 - mean) / std, rel=1e-15)


def test_vol_30_is_the_sample_std_of_log_returns():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    f = run(close)
    window = np.log(close[1:31] / close[:30])
    assert f.vol_30[30] == pytest.approx(np.std(window, ddof=1), rel=1e-12)


def test_a_negative_or_zero_price_has_no_log_return():
    f = run([10.0, -5.0, 0.0, 3.0], high=[11, 0, 1, 4], low=[9, -6, -1, 2])
    assert f.ret_1[1] == -1.5
    assert nulls(f.log_ret_1) == [0, 1, 2, 3]  # negative ratio, zero ratio, from zero
    assert nulls(f.ret_1) == [0, 3]  # 3 / 0
