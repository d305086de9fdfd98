"""Read the load figures of a Redis server from its ``INFO`` reply (thin adapter).

Standard library and redis-py only (no Django): the collector service decides what to do
with a reading; this module only reads, and says precisely why it could not.

    reader = RedisMetricsReader(connect_timeout=5.0, read_timeout=5.0)
    info = reader.read("orders-queue", url)       # RedisInfo, or raises MetricsReadError

Connections
    One connection per key (the registered instance), kept between samples, so that a
    sample costs one round trip (``INFO memory clients stats``), not a TCP + TLS + AUTH
    handshake. It is re-created when the URL for the key changes (only a keyed digest of
    the URL is kept for the comparison) and dropped after any error, so the next read
    starts from a fresh connection. A kept connection that the server closed while idle
    (Heroku Redis closes idle clients after its ``timeout``, 300 s by default) is noticed
    before INFO is sent and silently replaced; that is reconnecting, not retrying. There
    are no retries inside redis-py (``Retry(NoBackoff(), 0)``): the schedule retries.
    No ``health_check_interval`` either: the pending-input check costs no round trip,
    where a health-check PING would cost one, and a silently dead peer is caught by
    the read timeout (and the connection then dropped).

    The connection is a redis-py ``Connection`` made by ``redis.ConnectionPool.from_url``
    (so URL parsing, TLS and timeouts are redis-py's), driven directly rather than through
    ``redis.Redis``: that is what lets a failure be told apart as "while connecting" or
    "waiting for INFO", and lets the ``-ERR max number of clients reached`` greeting of a
    full server be read instead of being lost as "connection not ready".

    RESP2 is used (``protocol=2``): plain ``AUTH`` works on every Redis version Heroku
    has offered, whereas redis-py 8's default RESP3 needs ``HELLO`` (Redis 6+). CLIENT
    SETINFO is switched off (``driver_info=None``): two fewer round trips per connect.
    The legacy Heroku Redis user name ``h`` (``redis://h:PASSWORD@host``, still on old
    add-ons) is dropped before AUTH, as Heroku's own clients do: Redis 6+ would read
    ``AUTH h PASSWORD`` as the ACL user "h", which does not exist.

TLS
    ``rediss://`` connects with ``ssl_cert_reqs=None`` (``CERT_NONE``, no host name
    check): Heroku Key-Value Store serves a self-signed certificate (chain) with no CA we
    could verify it against, so verification would fail on every connection; this is
    the usual setting for Heroku's Redis with redis-py. The traffic is encrypted, but
    the server is not authenticated. A ``ssl_cert_reqs`` in the
    URL's query string still wins (redis-py gives query arguments precedence).

Deadline and size cap
    A read has one deadline for the whole exchange: connecting, TLS, AUTH, sending INFO and
    receiving the whole reply must end within ``connect_timeout + read_timeout`` (the
    ``deadline`` property). redis-py's socket timeouts bound each ``recv`` only, so a
    server trickling its reply a byte a second would hold a read (and its thread) for as
    long as it likes; here every ``recv`` and ``send`` waits at most for what is left of the
    deadline (the socket is wrapped, see :class:`_BudgetSocket`). A read past it fails as
    ``slow``. The bytes received in one exchange are capped at ``MAX_REPLY_BYTES`` (1 MiB;
    an INFO reply is a few kilobytes): past it the read stops and fails as ``too_large``,
    having held at most the cap in memory. The TCP connect itself is bounded by
    ``connect_timeout`` and DNS by the system resolver.

Errors
    Every failure is a :class:`MetricsReadError` with a ``kind`` and a one-line message
    naming host:port, never the URL or the password. ``needs_refresh`` says whether
    re-reading the URL from Heroku could help (see its docstring).

Threads and processes
    A lock per key serialises reads of one instance; different keys proceed in parallel.
    After a fork (Celery prefork), the child gets fresh locks and forgets the parent's
    connections instead of sharing their sockets (``os.register_at_fork``, plus a pid
    check). DNS resolution is the system resolver's and is not bounded by
    ``connect_timeout``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import socket
import ssl
import threading
import time
import traceback
import weakref
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    InvalidResponse,
    NoPermissionError,
    ResponseError,
)
from redis.retry import Retry

__all__ = ["KINDS", "MetricsReadError", "RedisInfo", "RedisMetricsReader"]

KINDS = frozenset(
    {"auth", "dns", "refused", "timeout", "slow", "too_large", "incomplete", "tls", "protocol", "bad_url", "other"}
)
MAX_REPLY_BYTES = 1 << 20  # per exchange; an INFO reply is a few kilobytes

# RedisInfo attribute -> INFO field
_FIELDS = (
    ("used_memory", "used_memory"),
    ("maxmemory", "maxmemory"),
    ("connected_clients", "connected_clients"),
    ("maxclients", "maxclients"),
    ("evicted_keys", "evicted_keys"),
    ("rejected_connections", "rejected_connections"),
    ("ops_per_sec", "instantaneous_ops_per_sec"),
    ("keyspace_hits", "keyspace_hits"),
    ("keyspace_misses", "keyspace_misses"),
)
_WANTED = {field for _, field in _FIELDS} | {"maxmemory_policy"}
# Redis's eviction policies are short lower-case words with dashes (allkeys-lru, noeviction).
_POLICY_NAME = re.compile(r"[a-z][a-z-]{0,31}")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")
_NEGATIVE_NUMBER = re.compile(r"-[0-9]{1,20}")
# The largest figure each field can honestly hold: Redis counts in 64-bit integers, and no
# server has 2**31 clients or operations a second. A larger one is garbage, and would not
# fit the columns that store it (one such reply must not fail a whole batch of samples).
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
_MAX_VALUE = {"connected_clients": _INT32_MAX, "maxclients": _INT32_MAX, "instantaneous_ops_per_sec": _INT32_MAX}
_INFO_SECTIONS = ("memory", "clients", "stats")
_MAX_DETAIL = 160


# ---------------------------------------------------------------------------------------
# The reading
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RedisInfo:
    """The figures of one INFO reply; a field is None when missing or odd (see warnings).

    ``maxmemory`` is Redis's own figure: 0 means "no limit set". Counters
    (``evicted_keys``, ``rejected_connections``, ``keyspace_hits``, ``keyspace_misses``)
    are totals since the server started; a
    drop between two readings means a restart.
    """

    used_memory: int | None = None
    maxmemory: int | None = None
    connected_clients: int | None = None
    maxclients: int | None = None
    evicted_keys: int | None = None
    rejected_connections: int | None = None
    ops_per_sec: int | None = None
    keyspace_hits: int | None = None
    keyspace_misses: int | None = None
    maxmemory_policy: str | None = None  # "noeviction", "allkeys-lru", ...
    warnings: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """False unless both used memory and connected clients could be read: a sample
        without either cannot be judged, so it is a failed read (kind ``incomplete``)."""
        return self.used_memory is not None and self.connected_clients is not None

    @classmethod
    def from_info_text(cls, text: str | bytes) -> RedisInfo:
        """Parse an INFO reply; never raises. Missing or odd fields become warnings."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        raw: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, colon, value = line.partition(":")
            if colon and name in _WANTED:
                raw[name] = value.strip()
        values: dict[str, int] = {}
        warnings: list[str] = []
        for attribute, field in _FIELDS:
            value = raw.get(field)
            if value is None:
                warnings.append(f"{field}: missing")
            elif _WHOLE_NUMBER.fullmatch(value):
                if int(value) > _MAX_VALUE.get(field, _INT64_MAX):
                    warnings.append(f"{field}: out of range ({value})")
                else:
                    values[attribute] = int(value)
            elif _NEGATIVE_NUMBER.fullmatch(value):
                warnings.append(f"{field}: negative ({value})")
            else:
                warnings.append(f"{field}: not a whole number ({_clip(value, 32)!r})")
        policy = raw.get("maxmemory_policy")
        if policy is None:
            warnings.append("maxmemory_policy: missing")
        elif not _POLICY_NAME.fullmatch(policy):
            warnings.append(f"maxmemory_policy: not a policy name ({_clip(policy, 32)!r})")
            policy = None
        return cls(**values, maxmemory_policy=policy, warnings=tuple(warnings))


# ---------------------------------------------------------------------------------------
# The failure
# ---------------------------------------------------------------------------------------
class MetricsReadError(Exception):
    """A failed read. ``str()`` is one line for an operator, e.g.
    ``timeout: no INFO reply from 127.0.0.1:6380 within 5.0 s``; it never holds the
    password or the URL.

    kind
        auth, dns, refused, timeout (one socket operation got no answer in time), slow
        (the whole exchange missed its deadline), too_large (the reply exceeded
        MAX_REPLY_BYTES), incomplete (INFO answered without a readable used_memory or
        connected_clients), tls, protocol, bad_url or other.
    during_connect
        True when the failure came while the connection was being set up (TCP, TLS,
        AUTH), False when it came while waiting for INFO on an established connection.
    server_full
        True when the server refused the connection because it has reached
        ``maxclients`` (kind "refused"). That is a data-drop signal for the instance (its
        clients are being refused too), not a sign of a stale URL.
    """

    def __init__(self, kind: str, message: str, *, during_connect: bool = False, server_full: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown MetricsReadError kind {kind!r}")
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.during_connect = during_connect
        self.server_full = server_full

    @property
    def needs_refresh(self) -> bool:
        """Whether re-reading the Redis URL from Heroku (config var, add-on) could help.

        True for:
          auth     Heroku rotates credentials (maintenance, ``heroku redis:credentials
                   --reset``); the config var then holds the new password.
          dns      the host name went away (add-on replaced or moved by a plan change).
          refused  nothing listens on host:port any more: a plan change or maintenance
                   moved the instance to another host or port. Not when the server is
                   merely full (``server_full``): the URL is fine then.
          timeout  only when the connection could not be set up: the old host of a moved
                   instance often drops packets instead of refusing. A timeout waiting
                   for INFO on an established connection is a busy server: False.
          tls      with verification off, a TLS failure is a scheme/port mismatch, e.g.
                   the add-on moved to a TLS-only version and its URL became rediss://.
                   Kind "tls" also covers the other direction: a new plain-text
                   connection dropped without a reply (a TLS-only server reached with
                   redis://).
          bad_url  nothing but a new URL can fix it.
        False for protocol (the server answered, oddly) and other.

        Callers should still rate-limit refreshes per instance (the Heroku API budget
        is 4,500 calls an hour): a refresh that brings the same URL will not help twice.
        """
        if self.kind in ("auth", "dns", "tls", "bad_url"):
            return True
        if self.kind == "refused":
            return not self.server_full
        if self.kind == "timeout":
            return self.during_connect
        return False

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"MetricsReadError(kind={self.kind!r}, message={self.message!r})"

    def __reduce__(self):
        # Keeps the flags when pickled (Celery results, multiprocessing).
        return (
            type(self),
            (self.kind, self.message),
            {"during_connect": self.during_connect, "server_full": self.server_full},
        )


# ---------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Entry:
    url_digest: bytes
    target: str  # host:port, for messages
    host: str
    tls: bool
    pool: redis.ConnectionPool
    connection: redis.Connection
    multi_section_info: bool | None = None  # None: not yet known for this connection

    def close(self) -> None:
        try:
            self.connection.disconnect()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        try:
            self.pool.disconnect()
        except Exception:  # noqa: BLE001
            pass


class RedisMetricsReader:
    """Reads INFO from Redis servers, keeping one connection per key (module docstring)."""

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 5.0, max_reply_bytes: int = MAX_REPLY_BYTES):
        if not connect_timeout > 0 or not read_timeout > 0:
            raise ValueError("connect_timeout and read_timeout must be positive")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.max_reply_bytes = int(max_reply_bytes)
        self._guard = threading.Lock()
        self._reset_state()
        _READERS.add(self)

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._salt = os.urandom(16)
        self._entries: dict[str, _Entry] = {}
        self._key_locks: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"<RedisMetricsReader {len(self._entries)} connection(s)>"

    @property
    def deadline(self) -> float:
        """Seconds the whole exchange of one read may take (module docstring)."""
        return self.connect_timeout + self.read_timeout

    # -- public ----------------------------------------------------------------------
    def read(self, key: str, url: str) -> RedisInfo:
        """One INFO sample of the Redis at ``url``; raises MetricsReadError."""
        with self._lock_for(key):  # first: after a fork this also renews the digest salt
            digest = self._digest(url)
            entry = self._entries.get(key)
            if entry is not None and entry.url_digest != digest:
                self._drop(key)
                entry = None
            if entry is None:
                entry = self._open(url, digest)
                with self._guard:
                    self._entries[key] = entry
            try:
                return self._sample(entry, url)
            except BaseException:
                self._drop(key)
                raise

    def close(self, key: str) -> None:
        """Close the connection kept for ``key`` (no-op if there is none)."""
        with self._lock_for(key):
            self._drop(key)

    def close_all(self) -> None:
        """Close every kept connection."""
        with self._guard:
            self._check_fork()
            keys = list(self._entries)
        for key in keys:
            self.close(key)

    def __enter__(self) -> RedisMetricsReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close_all()

    # -- bookkeeping -------------------------------------------------------------------
    def _check_fork(self) -> None:
        # Caller holds self._guard. A forked child must not use the parent's sockets
        # (nor close them: redis-py skips the shutdown in a process that did not connect).
        if os.getpid() != self._pid:
            self._reset_state()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            self._check_fork()
            lock = self._key_locks.get(key)
            if lock is None:
                lock = self._key_locks[key] = threading.Lock()
            return lock

    def _digest(self, url: str) -> bytes:
        data = str(url).encode("utf-8", errors="surrogatepass")
        return hashlib.blake2b(data, key=self._salt, digest_size=16).digest()

    def _drop(self, key: str) -> None:
        with self._guard:
            entry = self._entries.pop(key, None)
        if entry is not None:
            entry.close()

    # -- opening -----------------------------------------------------------------------
    def _open(self, url: str, digest: bytes) -> _Entry:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
            raise MetricsReadError("bad_url", "bad_url: the Redis URL must start with redis:// or rediss://")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port or 6379
        except ValueError:
            raise MetricsReadError(
                "bad_url", "bad_url: the Redis URL cannot be parsed (bad port, brackets or unencoded characters)"
            ) from None
        if not host:
            raise MetricsReadError("bad_url", "bad_url: the Redis URL has no host name")
        host = unquote(host)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        tls = url.startswith("rediss://")
        options = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.read_timeout,
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
            "max_connections": 1,
            "protocol": 2,
            "driver_info": None,
            "connection_class": _TLSConnection if tls else _PlainConnection,
            "exchange": _Exchange(),
        }
        if tls:
            options["ssl_cert_reqs"] = None  # Heroku's self-signed certificates: module docstring
        try:
            pool = redis.ConnectionPool.from_url(url, **options)
            if pool.connection_kwargs.get("username") == "h":
                pool.connection_kwargs.pop("username")  # legacy Heroku placeholder
            connection = pool.make_connection()
        except (ValueError, TypeError, redis.RedisError) as exc:
            detail = _clean(str(exc), _secrets_of(url))
            raise MetricsReadError(
                "bad_url", f"bad_url: redis-py cannot use the Redis URL for {target}: {type(exc).__name__}: {detail}"
            ) from None
        return _Entry(url_digest=digest, target=target, host=host, tls=tls, pool=pool, connection=connection)

    # -- sampling ----------------------------------------------------------------------
    def _sample(self, entry: _Entry, url: str) -> RedisInfo:
        exchange = entry.connection.exchange
        exchange.start(self.deadline, self.max_reply_bytes)
        try:
            return self._exchange(entry, url)
        finally:
            exchange.stop()

    def _exchange(self, entry: _Entry, url: str) -> RedisInfo:
        connection = entry.connection
        fresh = not connection.is_connected
        if not fresh and _has_pending_input(connection):
            # Closed by the server while idle (or stray bytes): start over.
            connection.disconnect()
            entry.multi_section_info = None
            fresh = True
        try:
            connection.connect()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a MetricsReadError
            raise self._translate(exc, entry, url, during_connect=True, fresh=True) from None
        try:
            if fresh and connection.can_read(timeout=0):
                # Something before any command: a full server's "-ERR max number of
                # clients reached" greeting, read so that it raises as what it is.
                connection.read_response()
                raise InvalidResponse("unsolicited data before any command")
            reply = self._info(entry)
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, entry, url, during_connect=False, fresh=fresh) from None
        if not isinstance(reply, (bytes, str)):
            raise MetricsReadError(
                "protocol", f"protocol: INFO reply from {entry.target} is a {type(reply).__name__}, not text"
            )
        info = RedisInfo.from_info_text(reply)
        if not info.usable:
            problems = "; ".join(w for w in info.warnings if w.startswith(("used_memory", "connected_clients")))
            raise MetricsReadError(
                "incomplete",
                f"incomplete: INFO reply from {entry.target} lacks a readable used_memory or connected_clients"
                f" ({problems})",
            )
        return info

    def _info(self, entry: _Entry):
        """INFO memory clients stats (one round trip); plain INFO where that is refused."""
        connection = entry.connection
        if entry.multi_section_info is not False:
            connection.send_command("INFO", *_INFO_SECTIONS)
            try:
                reply = connection.read_response()
            except ResponseError as exc:
                # Redis < 7 answers "ERR syntax error" to several sections.
                if entry.multi_section_info or _is_auth_error(exc):
                    raise
            else:
                entry.multi_section_info = True
                return reply
            entry.multi_section_info = False
        connection.send_command("INFO")
        return connection.read_response()

    # -- errors ------------------------------------------------------------------------
    def _translate(
        self, exc: BaseException, entry: _Entry, url: str, *, during_connect: bool, fresh: bool
    ) -> MetricsReadError:
        if isinstance(exc, MetricsReadError):
            return exc
        target = entry.target
        chain = _chain(exc)
        detail = _clean(_describe(exc), _secrets_of(url))

        def error(kind: str, message: str, **flags) -> MetricsReadError:
            return MetricsReadError(kind, f"{kind}: {message}", during_connect=during_connect, **flags)

        exchange = entry.connection.exchange
        if exchange.oversized:
            return error("too_large", f"the INFO reply from {target} is over {_size(exchange.cap)}")
        if exchange.expired:
            return error("slow", f"{target} did not finish the INFO exchange within its {self.deadline:g} s deadline")

        if _is_auth_error(exc):
            if isinstance(exc, NoPermissionError):
                return error("auth", f"the user in the URL may not run INFO on {target} ({detail})")
            if not _url_has_password(url):
                return error("auth", f"{target} requires a password and the URL has none ({detail})")
            return error("auth", f"{target} rejected the credentials in the URL ({detail})")
        if "max number of clients reached" in str(exc):
            return error("refused", f"{target} has reached maxclients and refused our connection", server_full=True)
        for item in chain:
            if isinstance(item, socket.gaierror):
                reason = _clean(item.strerror or str(item), ())
                return error("dns", f"cannot resolve host {entry.host!r} ({reason})")
        if during_connect and any(isinstance(item, UnicodeError) for item in chain):
            return error("dns", f"host {entry.host!r} is not a valid DNS name")
        if entry.tls and any(_in_tls_handshake(item) for item in chain):
            # TCP connected, the TLS handshake got no answer: typically a plain-text
            # Redis, which waits for a command line that a ClientHello never ends.
            return error(
                "tls",
                f"no answer to the TLS handshake from {target} within {self.read_timeout:g} s"
                " (a plain-text port reached with rediss://?)",
            )
        if any(isinstance(item, (redis.TimeoutError, socket.timeout)) for item in chain):
            if during_connect and "connecting" in str(exc):
                return error("timeout", f"could not connect to {target} within {self.connect_timeout:g} s")
            if during_connect:
                return error("timeout", f"no reply from {target} while logging in within {self.read_timeout:g} s")
            return error("timeout", f"no INFO reply from {target} within {self.read_timeout:g} s")
        if any(isinstance(item, ConnectionRefusedError) for item in chain):
            return error("refused", f"{target} refused the connection (nothing listening on that port?)")
        for item in chain:
            if isinstance(item, (ssl.SSLError, ssl.CertificateError)):
                reason = _clean(getattr(item, "reason", None) or str(item), _secrets_of(url))
                return error("tls", f"TLS with {target} failed ({reason})")
        if isinstance(exc, BusyLoadingError):
            return error("other", f"{target} is loading its data set and cannot answer yet ({detail})")
        if isinstance(exc, (InvalidResponse, ResponseError, redis.DataError)):
            return error("protocol", f"unexpected reply from {target}: {detail}")
        closed = "closed by server" in str(exc).lower() or any(
            isinstance(item, (ConnectionResetError, BrokenPipeError)) for item in chain
        )
        if closed and fresh and not entry.tls:
            # A new plain-text connection dropped before any reply: what a TLS-only
            # server does (Heroku Key-Value Store 6+ and a stale redis:// URL).
            return error(
                "tls",
                f"{target} dropped a new plain-text connection without replying"
                " (a TLS-only server reached with redis:// instead of rediss://?)",
            )
        if closed:
            stage = "while connecting" if during_connect else "before replying to INFO"
            return error("other", f"{target} closed the connection {stage}")
        for item in chain:
            if isinstance(item, OSError) and item.errno is not None:
                reason = _clean(item.strerror or str(item), ())
                return error("other", f"cannot reach {target} ({reason})")
        return error("other", f"reading INFO from {target} failed: {detail}")


# ---------------------------------------------------------------------------------------
# The deadline and the size cap of one exchange
# ---------------------------------------------------------------------------------------
class _Exchange:
    """The budget of the read under way on one connection: a monotonic deadline and a cap
    on the bytes received. Idle (no deadline, no cap) between reads."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.cap: int | None = None
        self.received = 0
        self.expired = False
        self.oversized = False

    def start(self, seconds: float, cap: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.cap, self.received, self.expired, self.oversized = cap, 0, False, False

    def stop(self) -> None:
        self.deadline = self.cap = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def count(self, received: int) -> None:
        self.received += received
        if self.cap is not None and self.received > self.cap:
            self.oversized = True
            raise _ReplyTooLarge(f"more than {self.cap} bytes received")


class _ReplyTooLarge(OSError):
    """Raised inside redis-py's read (an OSError, so that redis-py drops the connection)."""


class _BudgetSocket:
    """A socket whose every recv/send waits at most for what is left of the exchange's
    deadline, and whose received bytes count against the exchange's cap. Everything else
    is the wrapped socket's (redis-py sets timeouts, polls, shuts down and closes it)."""

    def __init__(self, sock, exchange: _Exchange):
        self._sock = sock
        self._exchange = exchange
        self._timeout = sock.gettimeout()

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def settimeout(self, value) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self):
        return self._timeout

    def _arm(self) -> bool:
        """Lower the socket timeout to what is left of the deadline; True if it did."""
        remaining = self._exchange.remaining()
        if remaining is None or self._timeout == 0:  # idle, or a non-blocking poll
            self._sock.settimeout(self._timeout)
            return False
        if remaining <= 0:
            self._exchange.expired = True
            raise socket.timeout("the exchange's deadline has passed")
        if self._timeout is not None and self._timeout <= remaining:
            self._sock.settimeout(self._timeout)
            return False
        self._sock.settimeout(remaining)
        return True

    def _call(self, method, *args):
        bounded = self._arm()
        try:
            return method(*args)
        except socket.timeout:
            if bounded:
                self._exchange.expired = True
            raise

    def recv(self, *args):
        data = self._call(self._sock.recv, *args)
        self._exchange.count(len(data))
        return data

    def recv_into(self, *args):
        received = self._call(self._sock.recv_into, *args)
        self._exchange.count(received)
        return received

    def send(self, *args):
        return self._call(self._sock.send, *args)

    def sendall(self, *args):
        return self._call(self._sock.sendall, *args)


class _BudgetedConnection:
    """redis-py connection whose socket is a :class:`_BudgetSocket` (mixin)."""

    def __init__(self, *args, exchange: _Exchange, **kwargs):
        super().__init__(*args, **kwargs)
        self.exchange = exchange

    def _connect(self):
        # The TCP connect and TLS handshake happen in there; give them no more than is left.
        configured = self.socket_connect_timeout
        remaining = self.exchange.remaining()
        if remaining is not None:
            if remaining <= 0:
                self.exchange.expired = True
                raise socket.timeout("the exchange's deadline has passed")
            if configured is None or remaining < configured:
                self.socket_connect_timeout = remaining
        try:
            return _BudgetSocket(super()._connect(), self.exchange)
        finally:
            self.socket_connect_timeout = configured


class _PlainConnection(_BudgetedConnection, redis.Connection):
    pass


class _TLSConnection(_BudgetedConnection, redis.SSLConnection):
    pass


# After a fork, a child starts with fresh locks (one held by another thread of the parent
# at fork time would never be released) and without the parent's connections.
_READERS: weakref.WeakSet[RedisMetricsReader] = weakref.WeakSet()


def _reset_readers_in_child() -> None:
    for reader in list(_READERS):
        reader._guard = threading.Lock()
        reader._reset_state()


os.register_at_fork(after_in_child=_reset_readers_in_child)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
def _has_pending_input(connection) -> bool:
    """True if an idle kept connection has something to read: EOF or stray bytes."""
    try:
        return bool(connection.can_read(timeout=0))
    except Exception:  # noqa: BLE001 - closed or broken: replace it
        return True


def _is_auth_error(exc: BaseException) -> bool:
    if isinstance(exc, (AuthenticationError, AuthorizationError, NoPermissionError)):
        return True
    if isinstance(exc, ResponseError):
        text = str(exc)
        return text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")) or "invalid password" in text
    return False


def _in_tls_handshake(exc: BaseException) -> bool:
    """A socket timeout raised inside the TLS handshake (redis-py reports it as a connect timeout)."""
    if not isinstance(exc, socket.timeout):
        return False
    return any(frame.name == "do_handshake" for frame in traceback.extract_tb(exc.__traceback__))


def _url_has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts (redis-py raises inside ``except OSError``)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _secrets_of(url: str) -> tuple[str, ...]:
    """The password of a URL in the spellings that could show up in a message."""
    try:
        password = urlsplit(url).password
    except (ValueError, TypeError, AttributeError):
        password = None
    if not password:
        # Unparseable URL: mask everything that could be user information.
        head = str(url).split("://", 1)[-1]
        userinfo = head.rpartition("@")[0]
        return tuple(part for part in (userinfo, *userinfo.split(":")) if len(part) >= 3)
    spellings = {password, unquote(password), quote(unquote(password), safe="")}
    return tuple(sorted((s for s in spellings if s), key=len, reverse=True))


def _clean(text: str, secrets) -> str:
    """One line, clipped, with the given secrets and any URL user information masked."""
    text = str(text)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1***@", text)
    return _clip(text, _MAX_DETAIL)


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count % (1 << 20) == 0 else f"{count:,} bytes"


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
