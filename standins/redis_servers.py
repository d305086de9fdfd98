"""Throwaway ``redis-server`` processes for tests and benchmarks.

Each server runs from the ``redis-server`` binary on PATH, listens on 127.0.0.1 only, on a
free port, with its own temporary directory (log, no persistence), and can be stopped
and started again on the same port to play "the server went away and came back".

    server = start_redis(password="s3cret", maxmemory="4mb")
    server.url            # redis://:s3cret@127.0.0.1:PORT/0
    server.client()       # a redis.Redis for setting the scene (filling keys, ...)
    server.stop(); server.start()
    server.close()        # stop and remove the temporary directory

With ``tls=True`` the server listens with TLS only (``--port 0 --tls-port N``) using a
self-signed certificate made with ``cryptography``, like Heroku's; ``.url`` is then a
``rediss://`` URL. If this redis-server build has no TLS support, ``start_redis(tls=True)``
raises :class:`TLSUnsupported` (its text says why) and :func:`redis_tls_support` reports
it, so a test can skip with that reason.

In pytest, use the ``redis_server_factory`` fixture of ``tests/conftest.py``: it yields
``start_redis`` and closes every server it started at teardown.
"""

from __future__ import annotations

import datetime
import functools
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """redis-server could not be started (the text carries the tail of its log)."""


class TLSUnsupported(RedisServerError):
    """This redis-server build cannot serve TLS."""


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise RedisServerError("redis-server is not on PATH")
    return path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_self_signed_cert(directory: Path, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a self-signed certificate and its key (PEM) into ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "redis.crt"
    key_path = directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class RedisServer:
    """One redis-server process (see the module docstring)."""

    def __init__(
        self,
        *,
        password: str | None = None,
        maxmemory: int | str | None = None,
        maxclients: int | None = None,
        tls: bool = False,
        extra_args: tuple[str, ...] | list[str] = (),
    ):
        self.host = HOST
        self.password = password
        self.maxmemory = maxmemory
        self.maxclients = maxclients
        self.tls = tls
        self.extra_args = tuple(str(arg) for arg in extra_args)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.log_path = self.directory / "redis.log"
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        if tls:
            self.cert_path, self.key_path = write_self_signed_cert(self.directory)

    # -- addresses ---------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "rediss" if self.tls else "redis"

    @property
    def url(self) -> str:
        """URL as Heroku gives it (``redis://:password@host:port``), password if set."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"

    def url_with_password(self, password: str | None) -> str:
        auth = f":{quote(password, safe='')}@" if password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, **kwargs) -> redis.Redis:
        """A redis.Redis for arranging a test (TLS without verification, like the reader)."""
        options = {"socket_timeout": 10, "socket_connect_timeout": 5}
        if self.tls:
            options["ssl_cert_reqs"] = None
        options.update(kwargs)
        return redis.Redis.from_url(self.url, **options)

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> RedisServer:
        """Start the process (again, on the same port if it ran before)."""
        if self.running:
            return self
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            if self.port is None or attempt:
                self.port = free_port()
            try:
                self._spawn()
                return self
            except RedisServerError as exc:
                if isinstance(exc, TLSUnsupported) or attempt == attempts - 1 or "in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _command_line(self) -> list[str]:
        args = [
            redis_server_binary(),
            "--bind", self.host,
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        if self.tls:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.cert_path),
                "--tls-key-file", str(self.key_path),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        if self.maxmemory is not None:
            args += ["--maxmemory", str(self.maxmemory)]
        if self.maxclients is not None:
            args += ["--maxclients", str(self.maxclients)]
        return args + list(self.extra_args)

    def _spawn(self) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = subprocess.Popen(
            self._command_line(),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                self.process = None
                self._raise_start_failure(output + self._log_tail(log_offset))
            if self._answers_ping():
                return
            time.sleep(0.02)
        self._terminate()
        raise RedisServerError(
            f"redis-server on port {self.port} did not answer within {STARTUP_TIMEOUT} s:\n{self._log_tail(log_offset)}"
        )

    def _raise_start_failure(self, text: str) -> None:
        lowered = text.lower()
        tls_refused = any(phrase in lowered for phrase in ("not supported", "not available", "bad directive"))
        if self.tls and "tls" in lowered and tls_refused:
            raise TLSUnsupported(f"this redis-server build does not support TLS: {text.strip()[-300:]}")
        if "address already in use" in lowered:
            raise RedisServerError(f"port {self.port} in use: {text.strip()[-300:]}")
        raise RedisServerError(f"redis-server exited at start:\n{text.strip()[-2000:]}")

    def _answers_ping(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError:
            return False
        try:
            if self.tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock)
            sock.settimeout(1.0)
            request = b"PING\r\n"
            if self.password:
                secret = self.password.encode()
                request = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret) + request
            sock.sendall(request)
            data = b""
            while b"PONG" not in data and b"-" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return b"PONG" in data
        except (OSError, ssl.SSLError):
            return False
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop the process (the port and the directory are kept for :meth:`start`)."""
        self._terminate()

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SHUTDOWN_TIMEOUT)
        if process.stdout:
            process.stdout.close()

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- configuration -----------------------------------------------------------------
    def set_password(self, new: str | None) -> None:
        """Rotate the password (CONFIG SET requirepass). Existing connections stay logged in."""
        with self.client() as admin:
            admin.config_set("requirepass", new or "")
        self.password = new or None

    def _log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.scheme}://{self.host}:{self.port} {state}>"


def start_redis(
    *,
    password: str | None = None,
    maxmemory: int | str | None = None,
    maxclients: int | None = None,
    tls: bool = False,
    extra_args: tuple[str, ...] | list[str] = (),
) -> RedisServer:
    """Start a throwaway redis-server; raises RedisServerError (TLSUnsupported) if it cannot."""
    server = RedisServer(password=password, maxmemory=maxmemory, maxclients=maxclients, tls=tls, extra_args=extra_args)
    try:
        return server.start()
    except BaseException:
        server.close()
        raise


@functools.lru_cache(maxsize=None)
def redis_tls_support() -> tuple[bool, str]:
    """(supported, reason): whether this redis-server serves TLS, found by trying it."""
    try:
        redis_server_binary()
    except RedisServerError as exc:
        return False, str(exc)
    try:
        with start_redis(tls=True):
            pass
    except TLSUnsupported as exc:
        return False, str(exc)
    except RedisServerError as exc:
        return False, f"redis-server would not start with TLS: {exc}"
    return True, "redis-server serves TLS"


__all__ = [
    "RedisServer",
    "RedisServerError",
    "TLSUnsupported",
    "free_port",
    "redis_tls_support",
    "start_redis",
    "write_self_signed_cert",
]
