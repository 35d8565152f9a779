"""The market-backfill console as an Airflow 3 plugin: the package's FastAPI app mounted at
``/market-backfill`` on the api-server, and a top-level entry of the UI's navigation that
shows its page inside the UI (``/plugin/market-backfill``). Every route of the app needs an
Airflow login (see ``market_backfill.console.app``). Importing this file is cheap (every
Airflow process does, task processes included): the app is built at its first request."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from market_backfill.console.mount import URL_PREFIX, LazyConsoleApp


class MarketBackfillConsole(AirflowPlugin):
    name = "market_backfill_console"
    fastapi_apps = [
        {"app": LazyConsoleApp(), "url_prefix": URL_PREFIX, "name": "Market backfill console"}
    ]
    external_views = [
        {
            "name": "Market backfill",
            "href": "market-backfill/",  # relative to the UI's base URL; the trailing slash
            # keeps the page's relative asset and API URLs under the prefix
            "url_route": "market-backfill",
            "destination": "nav",
            "nav_top_level": True,
            "icon": "market-backfill/assets/icon.svg",
        }
    ]
