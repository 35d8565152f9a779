from __future__ import annotations

import numpy as np

from market_backfill.names import FIXED_SCALE as PX
from market_backfill.names import UNDEF_PRICE
from market_backfill.reingest.hygiene import validate_bars
from market_backfill_devtools.sample import bar_frame

FLOOR = 1000 * PX


def test_clean_bars_pass_untouched():
    bars = bar_frame(50)
    result = validate_bars(bars, FLOOR)
    assert result.rows_in == result.rows_valid == 50
    assert sum(result.skipped.values()) == 0


def test_each_bad_bar_is_counted_under_one_reason():
    bars = bar_frame(10)
    bars.loc[0, "high"] = bars.loc[0, "low"] - PX  # high < low
    bars.loc[1, "close"] = bars.loc[1, "high"] + PX  # close above high
    bars.loc[2, ["open", "high", "low", "close"]] = [900 * PX, 901 * PX, 899 * PX, 900 * PX]
    bars.loc[3, "open"] = UNDEF_PRICE
    bars.loc[4, "low"] = 500 * PX  # below floor and breaks nothing else
    bars.loc[4, "open"] = max(bars.loc[4, "open"], bars.loc[4, "low"])
    result = validate_bars(bars, FLOOR)
    assert result.skipped == {
        "UNDEF_PRICE": 1,
        "OHLC_INTEGRITY": 2,
        "PRICE_FLOOR": 2,
        "DUPLICATE_TS": 0,
    }
    assert result.rows_valid == 5


def test_duplicates_keep_the_first_good_bar_and_order_is_repaired():
    bars = bar_frame(6)
    dup = bars.iloc[[2]].copy()
    dup["volume"] = 999_999
    shuffled = bars.iloc[[5, 3, 1, 0, 4, 2]]
    import pandas as pd

    result = validate_bars(pd.concat([shuffled, dup], ignore_index=True), FLOOR)
    assert result.skipped["DUPLICATE_TS"] == 1
    assert np.all(np.diff(result.bars["ts"]) > 0)
    assert result.bars["volume"][2] == bars.loc[2, "volume"]


def test_a_bad_duplicate_does_not_shadow_a_good_one():
    bars = bar_frame(3)
    bad = bars.iloc[[1]].copy()
    bad["high"] = bad["low"] - PX
    import pandas as pd

    result = validate_bars(pd.concat([bad, bars], ignore_index=True), FLOOR)
    assert result.rows_valid == 3
    assert result.skipped["OHLC_INTEGRITY"] == 1
    assert result.skipped["DUPLICATE_TS"] == 0


def test_empty_input():
    result = validate_bars(bar_frame(0), FLOOR)
    assert (result.rows_in, result.rows_valid) == (0, 0)


def test_without_a_floor_negative_prices_are_good():
    from market_backfill.symbols import NO_FLOOR

    bars = bar_frame(5)
    for col in ("open", "high", "low", "close"):
        bars[col] = bars[col] - 21_050 * PX  # every price below zero
    checked = validate_bars(bars, NO_FLOOR)
    assert checked.rows_valid == 5
    assert checked.skipped["PRICE_FLOOR"] == 0
    assert validate_bars(bars, 0).skipped["PRICE_FLOOR"] == 5


def test_missing_prices_count_as_undefined_in_float_and_object_columns():
    """A price missing from a frame (NaN in a float column, None in an object one) is
    skipped like Databento's undefined price; the kept bars come back as int64."""
    bars = bar_frame(6)
    want = bars.drop(index=[1, 2]).reset_index(drop=True)
    bars["open"] = bars["open"].astype(float)
    bars.loc[1, "open"] = float("nan")
    bars["close"] = bars["close"].astype(object)
    bars.loc[2, "close"] = None
    result = validate_bars(bars, FLOOR)
    assert result.skipped["UNDEF_PRICE"] == 2
    assert result.rows_valid == 4
    for col in ("ts", "open", "high", "low", "close"):
        assert result.bars[col].dtype == np.int64
        np.testing.assert_array_equal(result.bars[col], want[col].to_numpy())
