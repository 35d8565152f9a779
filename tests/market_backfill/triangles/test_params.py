from __future__ import annotations

import pytest

from market_backfill.errors import ParamError
from market_backfill.triangles.engine import TriangleSettings
from market_backfill.triangles.params import parse_params


def test_params_validation():
    assert parse_params({"symbols": ["GLBX.MDP3:NQ"]}).settings == TriangleSettings()
    with pytest.raises(ParamError, match="needs 'allow_legacy': true"):
        parse_params({"symbols": ["GLBX.MDP3:NQ"], "source_table": "legacy"})
    with pytest.raises(ParamError, match="param 'anchor'"):
        parse_params({"symbols": ["GLBX.MDP3:NQ"], "anchor": "monthly"})
    with pytest.raises(ParamError, match="param 'warmup'"):
        parse_params({"symbols": ["GLBX.MDP3:NQ"], "warmup": -3})
    with pytest.raises(ParamError, match="param 'source_table'"):
        parse_params({"symbols": ["GLBX.MDP3:NQ"], "source_table": "raw"})


def test_writers_default_to_two_and_are_checked():
    assert parse_params({"symbols": ["GLBX.MDP3:NQ"]}).writers == 2
    assert parse_params({**{"symbols": ["GLBX.MDP3:NQ"]}, "writers": 8}).writers == 8
    for bad in (0, 9, True, "2"):
        with pytest.raises(ParamError, match="param 'writers' must be") as err:
            parse_params({**{"symbols": ["GLBX.MDP3:NQ"]}, "writers": bad})
        assert err.value.param == "writers"
