"""A TCP proxy that adds a fixed network delay, for benchmarks (no machine network config).

    port, stop = start_delay_proxy(target_port=6379, delay_s=0.025)
    # redis://127.0.0.1:{port} now reaches 127.0.0.1:6379 with 25 ms each way (50 ms RTT)
    stop()

It forwards 127.0.0.1:listen_port -> 127.0.0.1:target_port and delivers every chunk
``delay_s`` after it was read, in each direction, in order. The delay is a latency, not a
throughput limit: chunks in flight overlap, as on a long network path. It runs an asyncio
loop in a daemon thread and is bounded: at most ``max_connections`` client connections
(more are closed at once) and at most ``MAX_QUEUED_CHUNKS`` chunks in flight per direction
(the reading side waits when that is reached). ``stop()`` closes the listener and every
connection and joins the thread.

Run as a script for a self-check: it measures PING round trips to a Redis directly and
through the proxy and prints both (a throwaway redis-server is started if none is given):

    python benchmarks/collect_proxy.py [--delay 0.025] [--target-port PORT] [--pings 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

HOST = "127.0.0.1"
CHUNK_SIZE = 64 * 1024
MAX_QUEUED_CHUNKS = 256
MAX_CONNECTIONS = 256
UPSTREAM_CONNECT_TIMEOUT = 5.0


class DelayProxy:
    """See the module docstring. ``start()`` returns the listening port."""

    def __init__(
        self,
        target_port: int,
        delay_s: float,
        *,
        listen_port: int = 0,
        target_host: str = HOST,
        max_connections: int = MAX_CONNECTIONS,
    ):
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        self.target_host = target_host
        self.target_port = int(target_port)
        self.delay_s = float(delay_s)
        self.listen_port = int(listen_port)
        self.max_connections = max_connections
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._handlers: set[asyncio.Task] = set()

    # -- control (any thread) ----------------------------------------------------------
    def start(self, timeout: float = 5.0) -> int:
        if self._thread is not None:
            raise RuntimeError("proxy already started")
        self._thread = threading.Thread(target=self._run, name=f"delay-proxy->{self.target_port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("delay proxy did not start in time")
        if self._error is not None:
            raise RuntimeError(f"delay proxy could not start: {self._error}") from self._error
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout)

    def __enter__(self) -> DelayProxy:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the loop thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, HOST, self.listen_port, limit=CHUNK_SIZE)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if len(self._handlers) >= self.max_connections:
            client_writer.close()
            return
        task = asyncio.current_task()
        self._handlers.add(task)
        upstream_writer = None
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port, limit=CHUNK_SIZE),
                UPSTREAM_CONNECT_TIMEOUT,
            )
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio would log a cancelled connection handler)
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
            self._handlers.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy source to sink, each chunk delivered delay_s after it was read."""
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Queue = asyncio.Queue(MAX_QUEUED_CHUNKS)

        async def deliver() -> None:
            while True:
                due, data = await in_flight.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()

        deliverer = asyncio.create_task(deliver())
        try:
            while True:
                data = await source.read(CHUNK_SIZE)
                await in_flight.put((loop.time() + self.delay_s, data))
                if not data:
                    break
            await deliverer
        finally:
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await deliverer


def start_delay_proxy(target_port: int, delay_s: float, *, listen_port: int = 0) -> tuple[int, Callable[[], None]]:
    """Start a DelayProxy in a background thread; return (listening port, stop function)."""
    proxy = DelayProxy(target_port, delay_s, listen_port=listen_port)
    port = proxy.start()
    return port, proxy.stop


# ---------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _throwaway_redis():
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server is not on PATH; pass --target-port of a running Redis")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="delay-proxy-") as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
                    break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the throwaway redis-server did not start")
                time.sleep(0.02)
            yield port
        finally:
            process.terminate()
            process.wait(10)


def _ping_round_trips(port: int, count: int) -> list[float]:
    import redis

    client = redis.Redis(host=HOST, port=port, protocol=2, single_connection_client=True, socket_timeout=10)
    try:
        client.ping()  # connect outside the measurement
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            client.ping()
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        client.close()


def _describe(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"median {statistics.median(ms):7.2f} ms   min {min(ms):7.2f} ms   max {max(ms):7.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.025, help="one-way delay in seconds (default 0.025)")
    parser.add_argument("--target-port", type=int, help="a running Redis on 127.0.0.1 (default: start one)")
    parser.add_argument("--pings", type=int, default=20, help="PINGs to time (default 20)")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        target = args.target_port or stack.enter_context(_throwaway_redis())
        direct = _ping_round_trips(target, args.pings)
        port, stop = start_delay_proxy(target, args.delay)
        stack.callback(stop)
        proxied = _ping_round_trips(port, args.pings)

    expected = 2 * args.delay * 1000
    print(f"PING direct        127.0.0.1:{target}: {_describe(direct)}")
    print(f"PING through proxy 127.0.0.1:{port}: {_describe(proxied)}   (expected about {expected:.1f} ms)")
    extra = (statistics.median(proxied) - statistics.median(direct)) * 1000
    ok = expected * 0.9 <= extra <= expected * 1.5 + 5
    print(f"added round trip {extra:.1f} ms: {'ok' if ok else 'NOT as configured'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
