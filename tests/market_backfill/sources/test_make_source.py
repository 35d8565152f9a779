from __future__ import annotations

import pytest

from market_backfill.sources import PermanentSourceError, make_source
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.sources.dbn_file import DbnFileSource


def _no_credentials() -> tuple[str, str | None]:
    raise AssertionError("credentials are read only for the API")


def test_each_source_param_makes_its_source():
    api = make_source("databento", None, credentials=lambda: ("db-KEY", "https://h:1"))
    assert isinstance(api, DatabentoSource)
    assert api.gateway == "https://h:1"
    assert "db-KEY" not in repr(api)
    files = make_source("dbn_file", "/x/*.dbn", credentials=_no_credentials)
    assert isinstance(files, DbnFileSource)


def test_unknown_source_and_missing_key_fail_permanently():
    with pytest.raises(PermanentSourceError, match="unknown source 'ftp'"):
        make_source("ftp", None, credentials=_no_credentials)
    with pytest.raises(PermanentSourceError, match="no Databento API key"):
        make_source("databento", None, credentials=lambda: ("", None))
