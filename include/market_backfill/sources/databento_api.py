"""The Databento historical API as a bar source, through the official ``databento`` client.

One ``timeseries.get_range`` request per call, for every wanted continuous symbol of one
dataset (``schema=ohlcv-1m``, ``stype_in=continuous``). With a ``cache_dir`` the response
is kept on disk (zstd DBN, written atomically and flushed to disk, one writer at a time
through a file lock) and ``companions`` (the other symbols of the same run and dataset)
ride along in the same request: the sibling chunks of one month then read the file
instead of paying for another request, and a retried or cleared chunk costs nothing. A
response that cannot be read, kept (damaged on disk) or as it arrives, is removed and
requested again; two in a row that arrive unreadable stop the run (a client older than
the data's format would pay for every chunk's response only to fail), instead of a
damaged copy being read forever or paid for at every retry. The client does not retry, so this
module does: 429 waits for ``Retry-After``; 5xx, timeouts and network errors back off
exponentially; 401, 402, 403, 422 (and other 4xx) fail at once with a message that says
what to fix. The API key is never logged.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from market_backfill.names import OHLCV_1M
from market_backfill.retry import Backoff
from market_backfill.sources import PermanentSourceError, SourceError
from market_backfill.sources.cache import durable_replace, file_lock
from market_backfill.timeutil import from_ns, to_ns

if TYPE_CHECKING:
    from market_backfill.sources.dbn import Bars

log = logging.getLogger(__name__)

_PERMANENT_HINTS = {
    401: "the API key was rejected: set the password of the Airflow connection 'databento' "
    "(or DATABENTO_API_KEY) to a valid key",
    402: "payment required: the account has no credit or no license for this dataset",
    403: "forbidden: the API key has no access to this dataset or schema",
    422: "the request was rejected as invalid: check the symbols, the dataset and the dates "
    "(the end may lie beyond the data Databento has published)",
}
REQUEST_BACKOFF = Backoff(attempts=5, base_s=2.0, max_s=60.0)
T = TypeVar("T")


class _Damaged(SourceError):
    """A response that cannot be read, removed; ``fresh``: requested just now (not kept
    from before)."""

    def __init__(self, message: str, *, fresh: bool) -> None:
        super().__init__(message)
        self.fresh = fresh


def _undecodable(cause: BaseException | None) -> bool:
    """False when a failed read's ``cause`` is this host's (an I/O error, no memory): the
    bytes may be whole, so they are neither removed nor bought again."""
    return not isinstance(cause, (OSError, MemoryError))


def _raised_reading(exc: BaseException) -> bool:
    """True when the client raised ``exc`` decoding the response it had received whole
    (its ``DBNStore`` and the DBN decoder), not sending the request, receiving the
    answer, or meeting an error of this host (:func:`_undecodable`)."""
    from databento_dbn import DBNError

    if isinstance(exc, DBNError):
        return True
    if not _undecodable(exc):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "databento.common.dbnstore":
            return True
        tb = tb.tb_next
    return False


class _Kept(NamedTuple):
    """A response in the cache: its entry's name (its lock's), its file, what the file was
    when this process took it (:func:`_identity`), whether this process downloaded it
    just now."""

    entry: str
    path: Path
    identity: tuple[int, int, int]
    fresh: bool


def _identity(path: Path) -> tuple[int, int, int]:
    """What tells one file at ``path`` from another put there later: its inode, its
    modification and its status change times."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


class DatabentoSource:
    """Fetch ``ohlcv-1m`` bars from Databento (or a gateway given in the connection)."""

    name = "databento"

    def __init__(
        self,
        key: str,
        gateway: str | None = None,
        *,
        backoff: Backoff = REQUEST_BACKOFF,
        cache_dir: Path | None = None,
        companions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if not key:
            raise PermanentSourceError(
                "no Databento API key: set the password of the Airflow connection 'databento' "
                "or the environment variable DATABENTO_API_KEY"
            )
        self._key = key
        self.gateway = gateway
        self.backoff = backoff
        self.cache_dir = cache_dir
        self.companions = {k: tuple(v) for k, v in (companions or {}).items()}
        self.requests = 0
        self.retries = 0

    def __repr__(self) -> str:  # never show the key
        return f"DatabentoSource(gateway={self.gateway!r})"

    def client(self) -> Any:
        """A ``databento.Historical`` client for the key and gateway (no request made)."""
        import databento

        if self.gateway:
            return databento.Historical(key=self._key, gateway=self.gateway)
        return databento.Historical(key=self._key)

    def fetch(self, dataset: str, wanted: dict[str, str], start: datetime, end: datetime) -> Bars:
        """The ``wanted`` continuous symbols' bars (mapped to registry symbols) in
        ``[start, end)`` of one request for them and their companions: the cached response,
        else a new one. A response that cannot be read is removed and requested again; the
        second new one that cannot be read raises a run-wide :class:`PermanentSourceError`.
        No database work."""
        symbols = sorted(set(wanted) | set(self.companions.get(dataset, ())))
        unreadable = 0  # responses requested by this call that could not be read
        for _ in range(4):  # kept copies another process wrote, then at most two requests
            try:
                return self._read(dataset, symbols, wanted, start, end)
            except _Damaged as damaged:
                unreadable += damaged.fresh
                if unreadable == 2:
                    raise PermanentSourceError(
                        f"Databento {dataset} {','.join(symbols)}: two responses in a row "
                        f"could not be read ({damaged}): if the client libraries are older "
                        "than Databento's data format, upgrade databento and databento-dbn, "
                        "then clear the failed chunks",
                        run_wide=True,
                    ) from damaged
                log.warning(
                    "Databento %s %s: %s; requesting it again", dataset, ",".join(symbols), damaged
                )
        raise SourceError(  # pragma: no cover - a kept copy damaged again and again
            f"Databento {dataset} {','.join(symbols)}: no readable response"
        )

    def _read(
        self,
        dataset: str,
        symbols: list[str],
        wanted: dict[str, str],
        start: datetime,
        end: datetime,
    ) -> Bars:
        """The ``wanted`` bars of the request's response: kept in the cache, else
        requested. Raises :class:`_Damaged` when the response cannot be read (it is
        removed: none is kept to be read again)."""
        from market_backfill.sources.dbn import DbnDataError, open_store, read_bars

        name = f"Databento {dataset}"
        if self.cache_dir is None:
            try:
                store = open_store(self._get_range(dataset, symbols, start, end).raw, name)
                return read_bars(store, wanted, to_ns(start), to_ns(end), name)
            except DbnDataError as exc:
                if not _undecodable(exc.__cause__):
                    raise SourceError(str(exc)) from exc
                raise _Damaged(f"the response cannot be read ({exc})", fresh=True) from exc
        kept = self._cached_range(dataset, symbols, start, end)
        try:
            store = open_store(kept.path, str(kept.path))
            return read_bars(store, wanted, to_ns(start), to_ns(end), name)
        except DbnDataError as exc:
            if not _undecodable(exc.__cause__):  # kept as it is: a retry reads it again
                raise SourceError(str(exc)) from exc
            self._discard(kept)
            which = "the response" if kept.fresh else "the cached response"
            raise _Damaged(f"{which} cannot be read ({exc})", fresh=kept.fresh) from exc

    @staticmethod
    def _entry(dataset: str, symbols: list[str], start: datetime, end: datetime) -> str:
        """The cache entry's name for a request."""
        ident = f"{dataset}|{','.join(symbols)}|{start.isoformat()}|{end.isoformat()}"
        return hashlib.sha256(ident.encode()).hexdigest()[:24]

    def _cached_range(
        self, dataset: str, symbols: list[str], start: datetime, end: datetime
    ) -> _Kept:
        """The request's response in the cache: the file kept, else downloaded now (under
        the entry's lock: one request for every process asking at once)."""
        assert self.cache_dir is not None
        name = self._entry(dataset, symbols, start, end)
        path = self.cache_dir / f"{dataset}-{name}.dbn.zst"
        with file_lock(self.cache_dir, name):
            if path.exists():
                log.info("Databento %s %s: reusing the cached response", dataset, ",".join(symbols))
                return _Kept(name, path, _identity(path), fresh=False)
            partial = path.with_name(f"{path.name}.{os.getpid()}.part")
            try:
                self._get_range(dataset, symbols, start, end, path=partial)
                try:
                    durable_replace(partial, path)
                except OSError as exc:  # paid for: a retry would pay again
                    raise _unwritable(f"{dataset} {','.join(symbols)}", str(exc)) from None
            except BaseException:
                partial.unlink(missing_ok=True)  # never a half-written response left
                raise
            return _Kept(name, path, _identity(path), fresh=True)

    def _discard(self, kept: _Kept) -> None:
        """Remove a response that cannot be read, unless another process has replaced it
        since (its identity changed): that one is left for the next read to judge. A file
        this host cannot remove is left with a warning (the next read finds it damaged
        again)."""
        try:
            with file_lock(kept.path.parent, kept.entry):
                if _identity(kept.path) == kept.identity:
                    kept.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: cannot remove the damaged response (%s)", kept.path.name, exc)

    def _get_range(
        self,
        dataset: str,
        symbols: list[str],
        start: datetime,
        end: datetime,
        path: Path | None = None,
    ) -> Any:
        client = self.client()
        what = f"{dataset} {','.join(symbols)} {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M}"

        def request() -> Any:
            self.requests += 1
            if path is not None:
                path.unlink(missing_ok=True)  # the client refuses to overwrite
            try:
                return client.timeseries.get_range(
                    dataset=dataset,
                    symbols=symbols,
                    schema=OHLCV_1M,
                    stype_in="continuous",
                    start=start.isoformat(),
                    end=end.isoformat(),
                    path=path,
                )
            except Exception as exc:
                if _raised_reading(exc):  # received whole: asking again is no network retry
                    raise _Damaged(
                        f"the response cannot be read ({type(exc).__name__}: {exc})", fresh=True
                    ) from exc
                raise

        return self.call(what, request)

    # -- metadata: free requests that tell what data requests would return and cost ---------
    def published_end(self, dataset: str) -> datetime:
        """The end of what ``dataset`` has published for ``ohlcv-1m`` (its per-schema end,
        else the dataset's end)."""
        client = self.client()
        found = self.call(
            f"{dataset} published range", lambda: client.metadata.get_dataset_range(dataset)
        )
        schema_range = (found.get("schema") or {}).get(OHLCV_1M) or {}
        return from_ns(to_ns(schema_range.get("end") or found["end"]))

    def quote(self, dataset: str, symbols: list[str], start: datetime, end: datetime) -> Quote:
        """What ``timeseries.get_range`` of these symbols over ``[start, end)`` would cost
        (USD) and bill (bytes), as Databento quotes it."""
        client = self.client()
        kw = {
            "dataset": dataset,
            "symbols": symbols,
            "schema": OHLCV_1M,
            "stype_in": "continuous",
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        what = f"{dataset} {','.join(symbols)} {start:%Y-%m-%d}..{end:%Y-%m-%d} quote"
        cost = self.call(what, lambda: client.metadata.get_cost(**kw))
        size = self.call(what, lambda: client.metadata.get_billable_size(**kw))
        return Quote(cost_usd=float(cost), billable_bytes=int(size))

    def call(self, what: str, request: Callable[[], T], *, retry_unsure: bool = True) -> T:
        """``request()`` with the retries and error mapping of every Databento call: 429
        waits for ``Retry-After``; 5xx and network errors back off; 4xx fail at once.
        With ``retry_unsure`` False a failure after which the request may have taken
        effect (5xx, network) is raised at once as a :class:`SourceError`, so the caller
        can look before sending it again; a 429 (refused before any work) is still
        retried."""
        from databento.common.error import BentoClientError, BentoError, BentoServerError
        from requests import RequestException

        attempts = self.backoff.attempts
        for attempt in range(1, attempts + 1):
            unsure = True
            started = time.monotonic()
            try:
                result = request()
                log.info("Databento %s: answered in %.2fs", what, time.monotonic() - started)
                return result
            except BentoClientError as exc:
                status = exc.http_status or 0
                if status != 429:
                    hint = _PERMANENT_HINTS.get(status, "the request was refused")
                    detail = f" ({exc.message})" if getattr(exc, "message", None) else ""
                    raise PermanentSourceError(
                        f"Databento answered {status} for {what}: {hint}{detail}",
                        run_wide=status in (401, 402, 403),
                    ) from None
                delay = _retry_after(exc.headers) or self.backoff.delay(attempt)
                reason, unsure = "429 rate limited", False
            except BentoServerError as exc:
                delay, reason = self.backoff.delay(attempt), f"{exc.http_status} server error"
            except (RequestException, BentoError, OSError) as exc:
                local = _local_write_error(exc)
                if local is not None:  # another try would download (and bill) it again
                    raise _unwritable(what, local) from None
                delay, reason = self.backoff.delay(attempt), f"network error {type(exc).__name__}"
            if unsure and not retry_unsure:
                raise SourceError(f"Databento request for {what} failed: {reason}")
            if attempt == attempts:
                raise SourceError(
                    f"Databento request for {what} failed {attempts} times, last: {reason}"
                )
            self.retries += 1
            log.warning(
                "Databento %s: %s, retrying in %.1fs (attempt %d/%d)",
                what,
                reason,
                delay,
                attempt + 1,
                attempts,
            )
            self.backoff.wait(attempt, delay)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Quote:
    """Databento's price and billable size of one data request."""

    cost_usd: float
    billable_bytes: int


_LOCAL_WRITE_ERRNOS = frozenset(
    (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)
)


def _unwritable(what: str, reason: str) -> PermanentSourceError:
    """The error of a response this host could not keep (``reason``): it stops the run,
    since every other chunk would download (and bill) its response only to fail the same
    way."""
    return PermanentSourceError(
        f"Databento {what}: the response could not be written to the data directory "
        f"({reason}): free space, raise the limit or mend the disk, then clear the failed "
        "chunks",
        run_wide=True,
    )


def _local_write_error(exc: BaseException) -> str | None:
    """Why the response could not be written on this host (a full disk, a quota, a file
    size limit, a read-only or forbidden folder), or None for a network error. The client
    wraps a failed write in ``BentoError("Error streaming response")``, the ``OSError``
    kept as its context."""
    from requests import RequestException

    for err in (exc, exc.__context__, exc.__cause__):
        if (
            isinstance(err, OSError)
            and not isinstance(err, RequestException)
            and err.errno in _LOCAL_WRITE_ERRNOS
        ):
            return f"{type(err).__name__}: {os.strerror(err.errno)}"
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), capped at 5 minutes."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return min(300.0, max(0.0, float(value))) if value is not None else None
    except (TypeError, ValueError):
        return None
