"""``logic_version`` must change when the engine's output changes, and only then.

The fingerprint is a hash of the events the engine gives on fixed SYNTHETIC data under a
few settings. If this test fails after an engine change, the stored events of the old
logic differ from what the new one computes: bump ``LOGIC_VERSION`` and the fingerprint
together, so new rows never mix with old ones under one version.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from market_backfill.triangles.engine import LOGIC_VERSION, TriangleSettings, run_engine
from market_backfill_devtools.sample import synthetic_bars

FINGERPRINTS = {"triangles-1.0": "ab30069d8a481a049ce0d1432eb62162ce7337b6d49b78fc390d6446df418b5e"}


def engine_fingerprint() -> str:
    frame = synthetic_bars(
        "NQ.v.0", datetime(2025, 2, 23, tzinfo=UTC), datetime(2025, 3, 23, tzinfo=UTC), seed=1234
    )
    ts = frame.ts.to_numpy()
    digest = hashlib.sha256()
    for cfg in (
        TriangleSettings(),
        TriangleSettings(anchor="session", warmup=0),
        TriangleSettings(htf_aligned_only=True, use_5m=True, use_1h=True, require_engulfing=True),
        TriangleSettings(
            require_sweep_engulfing=True, anchor="fixed", anchor_at="2025-03-01T00:00:00Z"
        ),
    ):
        events = run_engine(ts, frame.open, frame.high, frame.low, frame.close, cfg).events(ts)
        digest.update(events.to_csv(index=False).encode())
    return digest.hexdigest()


def test_logic_version_matches_the_engine_output():
    assert FINGERPRINTS.get(LOGIC_VERSION) == engine_fingerprint(), (
        "the engine's output changed: bump LOGIC_VERSION and record the new fingerprint"
    )
