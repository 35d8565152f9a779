"""The shared batch inserter: idempotent writes in committed batches that survive lost connections.

Every stage writes through :class:`BatchInserter`. Rows go in batches of ``batch_size``
(500 by default) and each batch is committed as one transaction, on an autocommit
connection (no separate COMMIT round trip):

- fast path: ``COPY target FROM STDIN``: the batch's rows are new, they go straight in;
- when a batch meets existing rows (a re-run, an overlap, a retried batch whose commit
  did reach the server), COPY fails atomically on the unique key and the inserter switches,
  for that batch and the rest, to ``COPY`` into a session-private staging table followed by
  one ``INSERT ... SELECT ... ON CONFLICT ...; TRUNCATE staging`` statement (a single
  implicit transaction).

Both paths are idempotent, so a batch retried after a lost connection never doubles a row.
Rows go as COPY text by default; with ``binary`` kinds for every column (tables of plain
numbers, booleans, timestamps and text) both paths use binary COPY
(:mod:`market_backfill.db.copy_binary`): nothing is printed or parsed.

Committed, then durable: the batches are committed with ``synchronous_commit`` off (the
commit returns once its WAL record is in the server's buffers: visible and atomic as any
commit, without waiting for the disk). Every :data:`DURABLE_EVERY` batches, and when it
has no batch left, a writer makes them durable: one short transaction that writes a WAL
record (``pg_logical_emit_message``, any role may) and commits with the session's default
``synchronous_commit``, so it waits for the flush of the WAL up to it, every earlier commit
included (one WAL stream). Until then the writer keeps those batches; after any lost
connection (of any of the insert's writers: a server that crashed loses the commits its
disk had not received) it writes them again through the upsert path before its next
write, so they are restored if lost and left alone if not. When
:meth:`BatchInserter.insert` returns, every row it counts is on disk; a server crash
mid-insert loses nothing the insert does not write again. Connections go back to their
connector with ``synchronous_commit`` reset.

On a lost connection the inserter closes the connection, waits (exponential backoff),
reconnects through the connector (``PostgresHook`` in the DAGs) and retries the same batch,
at most ``backoff.attempts`` times; then it raises :class:`BatchInsertError`. Any other database
error (bad data) rolls the batch back and raises at once, naming the batch; batches
committed before it stay committed.

With ``writers`` > 1 the batches of one :meth:`BatchInserter.insert` go over that many
connections at once, each batch still its own committed transaction, taken in order by
whichever writer is free: the server writes one batch while it commits another, and the
client's waits overlap. Every guarantee above holds per batch; what changes is that a
failing batch may have later batches committed beside it (each writer finishes the batch
it holds, none takes another). For rows whose batches share no key, or in key order
(two batches then share at most one key): batches that share keys wait on each other's
commit, and two that insert several of the same keys in opposite orders could deadlock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypedDict

import numpy as np
from psycopg import sql
from psycopg.errors import UniqueViolation

from market_backfill.db.connection import (
    Connection,
    Connector,
    close_quietly,
    is_lost_connection,
    release,
)
from market_backfill.db.copy_binary import BinaryKind, encode_rows
from market_backfill.names import DEFAULT_BATCH_SIZE
from market_backfill.retry import Backoff

if TYPE_CHECKING:  # the text COPY formatter needs pandas: imported where used
    import pandas as pd

    from market_backfill.db.copy_format import ColumnKind


log = logging.getLogger(__name__)

BATCH_BACKOFF = Backoff(attempts=3, base_s=2.0, max_s=30.0)
DURABLE_EVERY = 20
"""A writer makes its batches durable every 20 commits and at its end (the module
docstring): a twentieth of the flushes; at most 20 batches kept to write again."""
_ASYNC_COMMITS = b"SET synchronous_commit = off"
_RESET_COMMITS = b"RESET synchronous_commit"
_MAKE_DURABLE = (
    b"BEGIN; SET LOCAL synchronous_commit TO DEFAULT; "
    b"SELECT pg_logical_emit_message(true, 'market_backfill', 'durable'); COMMIT"
)
"""A transaction that writes a WAL record (a logical decoding message: no table touched)
and commits as the server's or role's settings say: its commit waits for the flush of
the WAL up to it."""


@dataclass(frozen=True)
class BatchAttempt:
    """What the inserter is about to do: write ``batch`` (1-based; rows ``first_row`` to
    ``last_row``), try ``attempt`` of ``max_attempts``, on ``conn`` (the open connection,
    or None when it opens a new one first: the first batch, or after a lost connection)."""

    table: str
    batch: int
    attempt: int
    max_attempts: int
    first_row: int
    last_row: int
    conn: Connection | None


BatchHook = Callable[[BatchAttempt], None]


class BatchInsertError(RuntimeError):
    """A batch could not be written; ``batch`` is 1-based, earlier batches are committed
    (with several writers, some later ones may be too; a batch rejected when written again
    after a lost connection has later ones committed: the message says how many)."""

    def __init__(self, message: str, *, batch: int, first_row: int, last_row: int) -> None:
        super().__init__(message)
        self.batch = batch
        self.first_row = first_row
        self.last_row = last_row


class Cadence(TypedDict):
    """How a write went, in every stage's chunk result and summary."""

    batches: int
    commits: int  # one per batch written
    retries: int  # batches retried after a lost connection


@dataclass
class InsertStats:
    """What a write did: ``rows`` offered, ``written`` inserted or changed, and the cadence."""

    rows: int = 0
    written: int = 0
    batches: int = 0
    commits: int = 0
    retries: int = 0
    seconds: float = 0.0
    retry_errors: list[str] = field(default_factory=list)
    rows_committed: int = 0  # rows of the committed batches

    def cadence(self) -> Cadence:
        """The batches, commits and retries of the write."""
        return Cadence(batches=self.batches, commits=self.commits, retries=self.retries)


@dataclass(frozen=True)
class ConflictPolicy:
    """``ON CONFLICT (key) DO UPDATE SET update...`` or, with no ``update``, ``DO NOTHING``.

    ``changed_only`` skips rewriting rows whose values are already the same, so a re-run
    leaves ``updated_at`` (and the table's bloat) alone. ``touch`` columns are set to now().
    """

    key: tuple[str, ...]
    update: tuple[str, ...] = ()
    changed_only: bool = True
    touch: tuple[str, ...] = ()


class _Batch(NamedTuple):
    """One batch of an insert: its 1-based number, rows ``first`` to ``last``, the COPY
    payload."""

    number: int
    first: int
    last: int
    payload: str | bytes


def _numbered(payloads: Iterator[tuple[int, str | bytes]], stats: InsertStats) -> Iterator[_Batch]:
    """The (row count, payload) pairs of an insert as batches, counted in ``stats`` as
    they are taken."""
    for count, payload in payloads:
        stats.batches += 1
        first = stats.rows + 1
        stats.rows += count
        yield _Batch(stats.batches, first, stats.rows, payload)


class _Unflushed(NamedTuple):
    """A batch a writer committed without waiting for the disk: ``written`` as counted,
    ``losses`` the inserter's lost connections when its write started."""

    batch: _Batch
    written: int
    losses: int


class _Losses:
    """The lost connections the writers of one insert have met (shared with helpers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def seen(self) -> None:
        with self._lock:
            self.count += 1


class _BatchFailed(Exception):
    """A batch that could not be written (the cause chained), before the insert knows
    how many batches are committed."""

    def __init__(
        self, what: str, batch: _Batch, *, resumable: bool, rewritten: bool = False
    ) -> None:
        super().__init__(what)
        self.what, self.batch, self.resumable = what, batch, resumable
        self.rewritten = rewritten  # committed once, rejected when written again

    def error(self, commits: int, writers: int) -> BatchInsertError:
        """The :class:`BatchInsertError` to raise once ``commits`` batches are committed
        by ``writers`` connections (a batch written again counts among them: it is left
        out, and the batches after it are committed too)."""
        if self.rewritten:
            committed = f"{commits - 1} other batches are committed"
        elif writers == 1:
            committed = f"{commits} earlier batches are committed"
        else:
            committed = (
                f"{commits} other batches are committed ({writers} writers: later batches "
                "may be among them)"
            )
        resume = "; re-running the task resumes safely" if self.resumable else ""
        return BatchInsertError(
            f"{self.what}. {committed}{resume}.",
            batch=self.batch.number,
            first_row=self.batch.first,
            last_row=self.batch.last,
        )


class _Statements(NamedTuple):
    """The inserter's statements: composed, or rendered for its open connection."""

    direct: sql.Composable | bytes  # COPY into the table
    copy: sql.Composable | bytes  # COPY into the staging table
    insert: sql.Composable | bytes  # INSERT ... ON CONFLICT from staging; TRUNCATE staging
    stage: sql.Composable | bytes  # CREATE TEMP TABLE staging


class BatchInserter:
    """Write rows into ``table`` in committed batches; see the module docstring for guarantees.

    ``hook`` (else the process-wide :attr:`default_hook`) is called before every write
    attempt of every batch, in the writing thread, with the open connection: the
    deterministic place to observe the cadence or to inject a fault (a test terminates
    the backend or stops the server there; with the next attempt it starts it again).
    """

    default_hook: ClassVar[BatchHook | None] = None
    parallel_from: ClassVar[int] = 4
    """With ``writers`` > 1, an insert of fewer batches than this goes over one connection:
    a second connection costs more than it saves on a few batches."""

    def __init__(
        self,
        connect: Connector,
        table: str,
        columns: Sequence[str],
        conflict: ConflictPolicy,
        *,
        kinds: Mapping[str, ColumnKind] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backoff: Backoff = BATCH_BACKOFF,
        progress_every: int = 10,
        hook: BatchHook | None = None,
        binary: Mapping[str, BinaryKind] | None = None,
        writers: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if writers < 1:
            raise ValueError(f"writers must be >= 1, got {writers}")
        if not columns:
            raise ValueError("columns must not be empty")
        self._connect = connect
        self.table = table
        self.columns = tuple(columns)
        self.conflict = conflict
        self.kinds = dict(kinds or {})
        self.binary = dict(binary) if binary else None
        if self.binary is not None and set(self.columns) - set(self.binary):
            raise ValueError(f"binary COPY needs a kind for every column of {table}")
        self.batch_size = batch_size
        self.backoff = backoff
        self.progress_every = max(1, progress_every)
        self.hook = hook if hook is not None else BatchInserter.default_hook
        self.writers = writers
        self._tally = threading.Lock()  # the counts of an insert, kept by every writer
        self._losses = _Losses()  # shared with the helpers, as the tally
        self._unflushed: list[_Unflushed] = []  # committed since this writer's last flush
        self._async = False  # this connection's commits do not wait for the disk
        self._conn: Connection | None = None
        self._staging = sql.Identifier(f"_stage_{table}"[:63])
        self._stage_ready = False
        self.upsert_mode = False
        self._composed = self._build_sql()
        self._sql = self._composed  # rendered to bytes once per connection

    # -- SQL ---------------------------------------------------------------------------------
    def _build_sql(self) -> _Statements:
        target = sql.Identifier(self.table)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        stage = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {stg} (LIKE {target} INCLUDING DEFAULTS)"
        ).format(stg=self._staging, target=target)
        fmt = sql.SQL(" (FORMAT BINARY)" if self.binary else "")
        direct = sql.SQL("COPY {target} ({cols}) FROM STDIN{fmt}").format(
            target=target, cols=cols, fmt=fmt
        )
        copy = sql.SQL("COPY {stg} ({cols}) FROM STDIN{fmt}").format(
            stg=self._staging, cols=cols, fmt=fmt
        )
        key = sql.SQL(", ").join(sql.Identifier(c) for c in self.conflict.key)
        if self.conflict.update:
            sets = [
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in self.conflict.update
            ] + [sql.SQL("{c} = now()").format(c=sql.Identifier(c)) for c in self.conflict.touch]
            action: sql.Composable = sql.SQL("DO UPDATE SET {sets}").format(
                sets=sql.SQL(", ").join(sets)
            )
            if self.conflict.changed_only:
                old = sql.SQL(", ").join(
                    sql.SQL("{t}.{c}").format(t=target, c=sql.Identifier(c))
                    for c in self.conflict.update
                )
                new = sql.SQL(", ").join(
                    sql.SQL("EXCLUDED.{c}").format(c=sql.Identifier(c))
                    for c in self.conflict.update
                )
                action = sql.SQL("{a} WHERE ({old}) IS DISTINCT FROM ({new})").format(
                    a=action, old=old, new=new
                )
        else:
            action = sql.SQL("DO NOTHING")
        insert = sql.SQL(
            "INSERT INTO {target} ({cols}) SELECT {cols} FROM {stg} ON CONFLICT ({key}) {action}; "
            "TRUNCATE {stg}"
        ).format(target=target, cols=cols, stg=self._staging, key=key, action=action)
        return _Statements(direct, copy, insert, stage)

    # -- connection --------------------------------------------------------------------------
    def _ensure_connection(self) -> Connection:
        if self._conn is None:
            conn = self._connect()
            conn.autocommit = True
            self._conn = conn
            self._stage_ready = False
            self._async = False
            self._sql = _Statements(*(part.as_bytes(conn) for part in self._composed))
        return self._conn

    def _drop_connection(self) -> None:
        close_quietly(self._conn)
        self._conn = None
        self._stage_ready = False

    def close(self) -> None:
        """Give the inserter's connection back to its connector (:func:`release`: kept
        for reuse or closed), ``synchronous_commit`` reset; the next write takes a
        connection again."""
        if self._conn is not None:
            if self._async:
                try:
                    self._conn.execute(_RESET_COMMITS)
                except Exception:  # noqa: BLE001 - not reusable: closed, never given back
                    self._drop_connection()
                    return
            release(self._connect, self._conn)
        self._conn = None
        self._stage_ready = False

    def __enter__(self) -> BatchInserter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the connection's state is not known: never reused
            self._drop_connection()

    # -- writing -----------------------------------------------------------------------------
    def _write_batch(self, payload: str | bytes) -> int:
        """Write one batch as one committed transaction (not waiting for the disk); return
        rows inserted or changed."""
        conn = self._async_connection()
        if not self.upsert_mode:
            try:
                with conn.cursor() as cur:
                    with cur.copy(self._sql.direct) as copy:
                        copy.write(payload)
                    return max(cur.rowcount, 0)
            except UniqueViolation:
                self.upsert_mode = True
                log.info("%s: batch meets stored rows; upserting from here on", self.table)
        return self._upsert(conn, payload)

    def _async_connection(self) -> Connection:
        """The writer's connection, its commits not waiting for the disk."""
        conn = self._ensure_connection()
        if not self._async:
            conn.execute(_ASYNC_COMMITS)
            self._async = True
        return conn

    def _upsert(self, conn: Connection, payload: str | bytes) -> int:
        """Write a batch through the staging table and ``INSERT ... ON CONFLICT``: one
        committed transaction; return rows inserted or changed."""
        with conn.cursor() as cur:
            if not self._stage_ready:  # new connection, or a batch that failed midway
                cur.execute(self._sql.stage)
                cur.execute(sql.SQL("TRUNCATE {}").format(self._staging))
            self._stage_ready = False  # until the batch's INSERT; TRUNCATE has run
            with cur.copy(self._sql.copy) as copy:
                copy.write(payload)
            cur.execute(self._sql.insert)
            self._stage_ready = True
            return max(cur.rowcount, 0)

    def _write_again(self, stats: InsertStats) -> None:
        """Write again, through the upsert path, every batch this writer committed without
        waiting for the disk and before a lost connection (any writer's) was seen: a
        server that crashed has lost them. A batch that is stored writes nothing; one that
        was lost is written whole and counted once more as a retry, its rows counted once.
        Raises :class:`_BatchFailed` naming the batch the database rejected; a lost
        connection's error propagates (the caller retries)."""
        seen = self._losses.count
        for i, sent in enumerate(self._unflushed):
            if sent.losses == seen:
                continue
            try:
                written = self._upsert(self._async_connection(), sent.batch.payload)
            except Exception as exc:
                if is_lost_connection(exc):
                    raise
                batch = sent.batch
                raise _BatchFailed(
                    f"{self.table}: batch {batch.number} (rows {batch.first}-{batch.last}), "
                    "written again after a lost connection, was rejected by the database "
                    f"and rolled back (it may not be stored): {type(exc).__name__}: {exc}",
                    batch,
                    resumable=False,
                    rewritten=True,
                ) from exc
            if written:
                log.warning(
                    "%s: batch %d was lost with the connection; written again (%d rows)",
                    self.table,
                    sent.batch.number,
                    written,
                )
                with self._tally:
                    stats.written += written - sent.written
                    stats.retries += 1
            self._unflushed[i] = _Unflushed(sent.batch, written or sent.written, seen)

    def _make_durable(self, stats: InsertStats) -> None:
        """Make this writer's committed batches durable (:data:`_MAKE_DURABLE`), after
        writing again what a lost connection may have cost; retried on a new connection
        after a lost one. Raises :class:`_BatchFailed` naming the last batch, or the batch
        written again that the database rejected."""
        if not self._unflushed:
            return
        last = self._unflushed[-1].batch
        attempts = self.backoff.attempts
        for attempt in range(1, attempts + 1):
            try:
                self._write_again(stats)
                self._async_connection().execute(_MAKE_DURABLE)
            except _BatchFailed:
                raise
            except Exception as exc:
                if not is_lost_connection(exc) or attempt == attempts:
                    raise self._given_up(
                        exc,
                        f"{self.table}: batches up to {last.number} (rows up to {last.last}) "
                        "are committed but could not be made durable",
                        last,
                    ) from exc
                self._lost(exc, f"making batches durable up to {last.number}", attempt, stats)
                continue
            self._unflushed.clear()
            return

    def _given_up(self, exc: BaseException, what: str, batch: _Batch) -> _BatchFailed:
        """The failure to raise after the last attempt (``what``, then the error); a lost
        connection is noted for every writer and closed."""
        if is_lost_connection(exc):
            self._losses.seen()
            self._drop_connection()
        return _BatchFailed(
            f"{what}: {type(exc).__name__}: {str(exc).strip()}", batch, resumable=True
        )

    def _lost(self, exc: BaseException, doing: str, attempt: int, stats: InsertStats) -> None:
        """After a lost connection: note it for every writer, close it, count the retry
        and wait (backoff) before ``attempt`` + 1."""
        self._losses.seen()
        self._drop_connection()
        with self._tally:
            stats.retries += 1
            stats.retry_errors.append(type(exc).__name__)
        log.warning(
            "%s: database connection lost %s (%s); reconnecting in %.1fs (attempt %d/%d)",
            self.table,
            doing,
            type(exc).__name__,
            self.backoff.delay(attempt),
            attempt + 1,
            self.backoff.attempts,
        )
        self.backoff.wait(attempt)

    def _write_with_retry(
        self, batch: _Batch, stats: InsertStats, total_batches: int | None
    ) -> None:
        """Write ``batch`` as one committed transaction, retried on a new connection after
        a lost one (after writing again what the loss may have cost, :meth:`_write_again`);
        count it in ``stats``; every :data:`DURABLE_EVERY` batches make them durable.
        Raises :class:`_BatchFailed`."""
        label = f"batch {batch.number}" + (f"/{total_batches}" if total_batches else "")
        attempts = self.backoff.attempts
        for attempt in range(1, attempts + 1):
            losses = self._losses.count
            try:
                if self.hook is not None:
                    self.hook(
                        BatchAttempt(
                            self.table,
                            batch.number,
                            attempt,
                            attempts,
                            batch.first,
                            batch.last,
                            self._conn,
                        )
                    )
                self._write_again(stats)
                written = self._write_batch(batch.payload)
            except _BatchFailed:
                raise
            except Exception as exc:
                if not is_lost_connection(exc):
                    raise _BatchFailed(
                        f"{self.table}: {label} (rows {batch.first}-{batch.last}) was rejected "
                        f"by the database and rolled back: {type(exc).__name__}: {exc}",
                        batch,
                        resumable=False,
                    ) from exc
                if attempt == attempts:
                    raise self._given_up(
                        exc,
                        f"{self.table}: {label} (rows {batch.first}-{batch.last}) failed after "
                        f"{attempts} attempts, the database connection kept failing",
                        batch,
                    ) from exc
                self._lost(exc, f"during {label}", attempt, stats)
                continue
            self._unflushed.append(_Unflushed(batch, written, losses))
            with self._tally:
                stats.written += written
                stats.commits += 1
                stats.rows_committed += batch.last - batch.first + 1
                if stats.commits % self.progress_every == 0 or stats.commits == total_batches:
                    log.info(
                        "%s: batch %d%s, %d rows (commits: %d, retries: %d)",
                        self.table,
                        stats.commits,
                        f"/{total_batches}" if total_batches else "",
                        stats.rows_committed,
                        stats.commits,
                        stats.retries,
                    )
            if len(self._unflushed) >= DURABLE_EVERY:
                self._make_durable(stats)
            return

    def insert(
        self, rows: pd.DataFrame | Mapping[str, np.ndarray] | Iterable[Sequence[Any]]
    ) -> InsertStats:
        """Write ``rows``: columns (a DataFrame, or numpy arrays by column name: binary COPY
        only) holding the inserter's columns, or row tuples in column order. Columns go
        over ``writers`` connections at once when they make at least :attr:`parallel_from`
        batches; tuples always over one.

        Returns the counts; raises :class:`BatchInsertError` when a batch cannot be written.
        """
        started = time.monotonic()
        stats = InsertStats()
        self._unflushed.clear()  # an earlier insert's, left by its failure
        payloads: Iterator[tuple[int, str | bytes]]
        if isinstance(rows, Mapping) or hasattr(rows, "columns"):  # a DataFrame
            missing = [c for c in self.columns if c not in rows]
            if missing:
                raise ValueError(f"{self.table}: missing columns {missing}")
            payloads, total = self._frame_batches(rows)
            total_batches: int | None = -(-total // self.batch_size)
        else:
            if self.binary is not None:
                raise ValueError(f"{self.table}: binary COPY takes columns, not tuples")
            payloads = ((len(b), "\n".join(b) + "\n") for b in self._tuple_batches(rows))
            total_batches = None
        batches = _numbered(payloads, stats)
        writers = self.writers if (total_batches or 0) >= self.parallel_from else 1
        try:
            if writers > 1:
                self._insert_parallel(batches, stats, total_batches, writers)
            else:
                for batch in batches:
                    self._write_with_retry(batch, stats, total_batches)
                self._make_durable(stats)
        except _BatchFailed as failed:
            raise failed.error(stats.commits, writers) from failed.__cause__
        stats.seconds = round(time.monotonic() - started, 3)
        return stats

    def _insert_parallel(
        self, batches: Iterator[_Batch], stats: InsertStats, total_batches: int | None, writers: int
    ) -> None:
        """Write ``batches`` over ``writers`` connections: this inserter's and those of
        helpers of the same settings, each a thread taking the next batch when free. After
        a failure, or an interruption of this thread, no writer takes another batch; all
        are joined before the failure is raised (the lowest failing batch's, or any other
        error first)."""
        helpers = [self._helper() for _ in range(writers - 1)]
        take = threading.Lock()
        stop = threading.Event()
        failures: list[BaseException] = []

        ended = [threading.Event() for _ in helpers]

        def write_all(writer: BatchInserter, done: threading.Event | None = None) -> None:
            try:
                while not stop.is_set():
                    with take:
                        batch = next(batches, None)
                    if batch is None:
                        writer._make_durable(stats)
                        return
                    writer._write_with_retry(batch, stats, total_batches)
            except BaseException as exc:  # noqa: BLE001 - raised below, after the join
                failures.append(exc)
                stop.set()
            finally:
                if done is not None:
                    done.set()

        threads = [
            threading.Thread(target=write_all, args=(h, e), name=f"{self.table} writer {i}")
            for i, (h, e) in enumerate(zip(helpers, ended, strict=True), start=2)
        ]
        for thread in threads:
            thread.start()
        joined = False
        try:
            write_all(self)
            for done in ended:  # events: Python 3.11 loses a thread a signal cut join() short
                done.wait()
            joined = True
        finally:
            if not joined:  # interrupted while waiting (a signal): helpers end their batch
                stop.set()
                for done in ended:
                    done.wait()
            self.upsert_mode = self.upsert_mode or any(h.upsert_mode for h in helpers)
            for helper in helpers:
                if failures or not joined:  # a helper's connection may be mid-failure
                    helper._drop_connection()
                else:
                    helper.close()
        others = [f for f in failures if not isinstance(f, _BatchFailed)]
        if others:
            raise others[0]
        if failures:
            raise min(failures, key=lambda f: f.batch.number)  # type: ignore[attr-defined]

    def _helper(self) -> BatchInserter:
        """A writer of the same table, columns, policy, hook and counts lock, with a
        connection of its own from the same connector."""
        helper = BatchInserter(
            self._connect,
            self.table,
            self.columns,
            self.conflict,
            kinds=self.kinds,
            batch_size=self.batch_size,
            backoff=self.backoff,
            progress_every=self.progress_every,
            binary=self.binary,
        )
        helper.hook = self.hook
        helper.upsert_mode = self.upsert_mode
        helper._tally = self._tally
        helper._losses = self._losses
        return helper

    def _frame_batches(
        self, rows: pd.DataFrame | Mapping[str, np.ndarray]
    ) -> tuple[Iterator[tuple[int, str | bytes]], int]:
        """(row count, COPY payload) per batch of columns, and the rows in all."""
        size = self.batch_size
        if self.binary is not None:
            encoded = encode_rows(rows, self.columns, self.binary)
            total = len(encoded)
            return (
                (min(size, total - i), encoded.payload(i, min(i + size, total)))
                for i in range(0, total, size)
            ), total
        from market_backfill.db.copy_format import frame_to_lines

        if isinstance(rows, Mapping):
            raise ValueError(f"{self.table}: text COPY takes a DataFrame")
        lines = frame_to_lines(rows, self.columns, self.kinds)
        total = len(lines)
        return (
            (len(lines[i : i + size]), "\n".join(lines[i : i + size]) + "\n")
            for i in range(0, total, size)
        ), total

    def _tuple_batches(self, rows: Iterable[Sequence[Any]]) -> Iterator[list[str]]:
        from market_backfill.db.copy_format import tuples_to_lines

        iterator = iter(rows)
        while chunk := list(islice(iterator, self.batch_size)):
            width = {len(r) for r in chunk}
            if width != {len(self.columns)}:
                raise ValueError(f"{self.table}: rows must have {len(self.columns)} values")
            yield tuples_to_lines(chunk)


def write_rows(
    connect: Connector,
    table: str,
    columns: Sequence[str],
    conflict: ConflictPolicy,
    rows: pd.DataFrame | Mapping[str, np.ndarray],
    *,
    kinds: Mapping[str, ColumnKind] | None = None,
    binary: Mapping[str, BinaryKind] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    writers: int = 1,
) -> InsertStats:
    """Write ``rows`` through a :class:`BatchInserter` of its own (committed batches over
    ``writers`` connections, see the module docstring; text COPY with ``kinds``, binary
    COPY with ``binary``) and close its connections."""
    with BatchInserter(
        connect,
        table,
        columns,
        conflict,
        kinds=kinds,
        batch_size=batch_size,
        binary=binary,
        writers=writers,
    ) as inserter:
        return inserter.insert(rows)
