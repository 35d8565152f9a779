"""PostgreSQL targets for tests: TEST_DATABASE_URL, or an embedded server started here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg


@dataclass(frozen=True)
class PgTarget:
    """Where a database lives; renders a libpq URL and an Airflow connection URI."""

    host: str
    port: int | None
    user: str
    password: str | None
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> PgTarget:
        parts = urlsplit(url)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        host = unquote(parts.hostname or query.get("host", "") or "")
        if parts.netloc and "%2F" in parts.netloc.upper():
            host = unquote(parts.netloc.rsplit("@", 1)[-1])
        return cls(
            host=host or "127.0.0.1",
            port=None if host.startswith("/") else (parts.port or 5432),
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
        )

    def with_db(self, dbname: str) -> PgTarget:
        return replace(self, dbname=dbname)

    @property
    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.dbname,
        )

    @property
    def airflow_uri(self) -> str:
        auth = quote(self.user, safe="") + (
            f":{quote(self.password, safe='')}" if self.password else ""
        )
        hostport = quote(self.host, safe="") + (f":{self.port}" if self.port else "")
        return f"postgresql://{auth}@{hostport}/{self.dbname}"

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, **kwargs)


def embedded_target(pgdata: Path) -> tuple[PgTarget, object]:
    from market_backfill_devtools import embedded

    server = embedded.start(pgdata)
    return PgTarget(embedded.socket_dir(server), None, "postgres", None, "postgres"), server


def create_database(admin: PgTarget, prefix: str = "t") -> PgTarget:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return admin.with_db(name)


def drop_database(admin: PgTarget, target: PgTarget) -> None:
    with admin.connect(autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psycopg.sql.Identifier(target.dbname)
            )
        )
