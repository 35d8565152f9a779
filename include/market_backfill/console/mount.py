"""The console as the plugin mounts it: an ASGI app that builds the FastAPI app
(:func:`market_backfill.console.app.create_app`) on its first request.

Airflow imports plugins in every process, task processes included (for macros and
listeners); importing FastAPI, Airflow's API security and the calendar stack there would
cost each task about a second. This module imports nothing heavy, so only the api-server
that serves a request pays for the app, once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

URL_PREFIX = "/market-backfill"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


class LazyConsoleApp:
    """ASGI app that delegates to the console app, created at the first request."""

    def __init__(self, factory: Callable[[], ASGIApp] | None = None) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                if self._factory is None:
                    from market_backfill.console.app import create_app

                    self._app = create_app()
                else:
                    self._app = self._factory()
            return self._app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # a mounted app gets none; nothing to set up
            return
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return "market_backfill.console.app:create_app (built at the first request)"
