"""Bad input at DAG level: each case has the outcome docs/failure-modes.md promises.

Every case starts with a known good month stored, and checks it is untouched afterwards:
no bad input may lose or corrupt stored data.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.names import FIXED_SCALE as PX
from market_backfill.names import UNDEF_PRICE
from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import encode_bars, write_bars
from market_backfill_devtools.sample import synthetic_bars

pytestmark = pytest.mark.airflow

DEC = {"start": "2025-12-01", "end": "2025-12-05"}


@pytest.fixture
def stored_november(market_db):
    """A good November stored first; returns a fingerprint to compare later."""
    from tests.conftest import store_bars

    bars = synthetic_bars(
        "NQ.v.0", datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 8, tzinfo=UTC), seed=8
    )
    store_bars(bars)
    return _fingerprint(market_db)


def _fingerprint(db) -> tuple:
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*), sum(volume), md5(string_agg(ts::text || open::text || close::text,"
            " ',' ORDER BY ts)) FROM market_bars_ohlcv_1m_clean WHERE ts < '2025-12-01'"
        ).fetchone()


def _december(**kwargs):
    bars = synthetic_bars(
        "NQ.v.0",
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2025, 12, 6, tzinfo=UTC),
        seed=9,
        **kwargs,
    )
    return bars.reset_index(drop=True)


def _run(dag, path, capfd, **conf):
    run = dag.test(run_conf={"source": "dbn_file", "dbn_path": str(path), **DEC, **conf})
    out, err = capfd.readouterr()
    return run, out + err


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated", "DBN file is truncated"),
        ("garbage", "not a readable DBN file"),
        ("trades_schema", "schema is 'trades', but ohlcv-1m bars are required"),
    ],
)
def test_unusable_files_fail_fast_and_name_the_problem(
    reingest_dag, market_db, stored_november, tmp_path, capfd, case, message
):
    path = tmp_path / f"{case}.dbn"
    if case == "truncated":
        path.write_bytes(
            encode_bars(_december(), dataset="GLBX.MDP3", instruments={"NQ.v.0": 1})[:-30]
        )
    elif case == "garbage":
        path.write_bytes(b"\x28\xb5\x2f\xfd garbage that is not zstd nor DBN" * 50)
    else:
        from databento_dbn import Metadata, Schema, SType

        path.write_bytes(
            bytes(
                Metadata(
                    dataset="GLBX.MDP3",
                    start=to_ns("2025-12-01"),
                    end=to_ns("2025-12-06"),
                    stype_in=SType.CONTINUOUS,
                    stype_out=SType.INSTRUMENT_ID,
                    schema=Schema.TRADES,
                    symbols=["NQ.v.0"],
                )
            )
        )
    run, output = _run(reingest_dag, path, capfd)
    assert run.state == "failed"
    assert message in output
    assert path.name in output
    assert _fingerprint(market_db) == stored_november
    with market_db.connect() as conn:
        attempts = conn.execute(
            "SELECT attempts FROM backfill_runs WHERE run_id = %s AND symbol <> '*'", (run.run_id,)
        ).fetchone()[0]
    assert attempts == 1, "an unusable file is not retried"


def test_bad_bars_are_skipped_by_reason_and_the_rest_is_stored(
    reingest_dag, market_db, stored_november, tmp_path, capfd
):
    bars = _december()
    bars.loc[10, "high"] = bars.loc[10, "low"] - PX  # high < low
    bars.loc[20, ["open", "high", "low", "close"]] = [900 * PX, 901 * PX, 899 * PX, 900 * PX]
    bars.loc[30, "close"] = UNDEF_PRICE
    dup = bars.iloc[[40, 41]].copy()
    shuffled = bars.sample(frac=1.0, random_state=3)  # out of order
    frame = __import__("pandas").concat([shuffled, dup], ignore_index=True)
    path = tmp_path / "bad-bars.dbn"
    raw = encode_bars(
        frame.iloc[:0],
        dataset="GLBX.MDP3",
        instruments={"NQ.v.0": 1},
        start_ns=to_ns("2025-12-01"),
        end_ns=to_ns("2025-12-06"),
    )
    import numpy as np
    from databento_dbn import OHLCVMsg

    records = np.zeros(len(frame), dtype=OHLCVMsg._dtypes)  # keep the file's record order
    records["length"], records["rtype"], records["publisher_id"] = 14, 33, 1
    records["instrument_id"] = 1
    records["ts_event"] = frame.ts.to_numpy().astype(np.uint64)
    for c in ("open", "high", "low", "close"):
        records[c] = frame[c].to_numpy()
    records["volume"] = frame.volume.to_numpy().astype(np.uint64)
    path.write_bytes(raw + records.tobytes())
    run, output = _run(reingest_dag, path, capfd)
    assert run.state == "success"
    with market_db.connect() as conn:
        counts = conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol <> '*'", (run.run_id,)
        ).fetchone()[0]
        stored = conn.execute(
            "SELECT count(*) FROM market_bars_ohlcv_1m_clean WHERE ts >= '2025-12-01'"
        ).fetchone()[0]
    assert counts["rows_skipped"] == {
        "UNDEF_PRICE": 1,
        "OHLC_INTEGRITY": 1,
        "PRICE_FLOOR": 1,
        "DUPLICATE_TS": 2,
    }
    assert stored == counts["rows_valid"] == len(bars) - 3
    assert _fingerprint(market_db) == stored_november


def test_sql_in_a_symbol_is_refused_and_nothing_runs(reingest_dag, market_db, stored_november):
    from airflow.sdk.exceptions import ParamValidationError

    evil = "GLBX.MDP3:NQ'); DROP TABLE market_bars_ohlcv_1m_clean; --"
    with pytest.raises(ParamValidationError, match="symbols"):
        reingest_dag.test(run_conf={"symbols": [evil], **DEC})
    from market_backfill.errors import ParamError
    from market_backfill.reingest.params import parse_params

    with pytest.raises(ParamError, match="malformed symbol"):
        parse_params({"symbols": [evil], **DEC})
    assert _fingerprint(market_db) == stored_november


def test_a_symbol_with_no_data_finishes_with_zero_counts(
    reingest_dag, market_db, stored_november, tmp_path, capfd
):
    path = write_bars(
        tmp_path / "nq.dbn", _december(), dataset="GLBX.MDP3", instruments={"NQ.v.0": 1}
    )
    run, _ = _run(reingest_dag, path, capfd, symbols=["GLBX.MDP3:ES"])
    assert run.state == "success"
    with market_db.connect() as conn:
        total = conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol = '*' "
            "AND chunk = 'total'",
            (run.run_id,),
        ).fetchone()[0]
    assert (total["rows_in"], total["rows_valid"], total["batches"]) == (0, 0, 0)
    assert _fingerprint(market_db) == stored_november


def test_negative_prices_are_kept_where_the_registry_has_no_floor(
    reingest_dag, market_db, tmp_path, capfd
):
    """Crude oil settled at -37.63 on 2020-04-20: a symbol without a floor keeps such bars
    exactly; NQ's floor still refuses prices under 1000."""
    with market_db.connect() as conn:  # preloaded without a floor
        assert conn.execute(
            "SELECT price_floor FROM market_symbols WHERE symbol = 'GLBX.MDP3:CL'"
        ).fetchone() == (None,)
    cl = synthetic_bars(
        "CL.v.0",
        datetime(2020, 4, 20, tzinfo=UTC),
        datetime(2020, 4, 21, 12, tzinfo=UTC),
        seed=4,
        start_price=18.0,
    )
    cl.loc[100, ["open", "high", "low", "close"]] = [
        -30 * PX,
        -29 * PX,
        -40 * PX - PX // 100 * 63,
        -37 * PX - PX // 100 * 63,
    ]
    nq = synthetic_bars(
        "NQ.v.0", datetime(2020, 4, 20, tzinfo=UTC), datetime(2020, 4, 21, tzinfo=UTC), seed=5
    )
    nq.loc[5, ["open", "high", "low", "close"]] = [-1 * PX, -1 * PX, -2 * PX, -1 * PX]
    path = write_bars(
        tmp_path / "oil.dbn",
        __import__("pandas").concat([cl, nq], ignore_index=True),
        dataset="GLBX.MDP3",
        instruments={"CL.v.0": 11, "NQ.v.0": 12},
    )
    run = reingest_dag.test(
        run_conf={
            "symbols": ["GLBX.MDP3:CL", "GLBX.MDP3:NQ"],
            "source": "dbn_file",
            "dbn_path": str(path),
            "start": "2020-04-20",
            "end": "2020-04-21",
        }
    )
    assert run.state == "success"
    with market_db.connect() as conn:
        low, close = conn.execute(
            "SELECT low::text, close::text FROM market_bars_ohlcv_1m_clean "
            "WHERE symbol = 'GLBX.MDP3:CL' AND ts = %s",
            (datetime.fromtimestamp(int(cl.ts[100]) / 1e9, UTC),),
        ).fetchone()
        stored = dict(
            conn.execute(
                "SELECT symbol, count(*) FROM market_bars_ohlcv_1m_clean GROUP BY symbol"
            ).fetchall()
        )
        skipped = dict(
            conn.execute(
                "SELECT symbol, counts->'rows_skipped' FROM backfill_runs "
                "WHERE run_id = %s AND symbol <> '*'",
                (run.run_id,),
            ).fetchall()
        )
    assert (low, close) == ("-40.630000000", "-37.630000000")
    assert stored == {"GLBX.MDP3:CL": len(cl), "GLBX.MDP3:NQ": len(nq) - 1}
    assert skipped == {"GLBX.MDP3:CL": {}, "GLBX.MDP3:NQ": {"PRICE_FLOOR": 1}}
