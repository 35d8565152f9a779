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
