from __future__ import annotations

import pytest

from market_backfill.errors import ParamError
from market_backfill.reingest.params import parse_params

BASE = {"symbols": ["GLBX.MDP3:NQ"], "source": "dbn_file", "dbn_path": "/x.dbn"}


def test_parse_params_defaults_and_errors():
    p = parse_params({**BASE, "start": "2025-12-01", "end": "2025-12-31"})
    assert (p.roll_rule, p.rank, p.batch_size) == (None, None, 500)  # None: the registry's
    assert p.writers == 2
    assert parse_params({**BASE, "writers": 8}).writers == 8
    for bad in (0, 9, True, "2"):
        with pytest.raises(ParamError, match="param 'writers' must be") as err:
            parse_params({**BASE, "writers": bad})
        assert err.value.param == "writers"
    with pytest.raises(ParamError, match="param 'symbols': malformed symbol"):
        parse_params({**BASE, "symbols": ["NQ; DROP TABLE x"]})
    with pytest.raises(ParamError, match="param 'roll_rule'") as err:
        parse_params({**BASE, "roll_rule": "z"})
    assert err.value.param == "roll_rule"
    with pytest.raises(ParamError, match="param 'rank'") as err:
        parse_params({**BASE, "rank": -2})
    assert err.value.param == "rank"
    with pytest.raises(ParamError, match="param 'source'"):
        parse_params({**BASE, "source": "ftp"})
    with pytest.raises(ParamError, match="'dbn_path' is required"):
        parse_params({**BASE, "dbn_path": None})
    with pytest.raises(ParamError, match="'batch_size' must be an integer >= 1"):
        parse_params({**BASE, "batch_size": 0})
