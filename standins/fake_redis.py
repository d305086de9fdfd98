"""A TCP server on 127.0.0.1 speaking just enough RESP to stand in for Redis (tests and benchmarks): trickled, chunked or oversized replies."""

import socket
import threading


class FakeServer:
    """A TCP server on 127.0.0.1 that answers each RESP command with ``respond(args)``.

    ``respond`` returns the raw bytes to send, an iterable of byte chunks (sent one after
    the other, for replies too large to hold), or None to send nothing. ``commands``
    records what was asked. With ``respond=None`` it accepts and never answers. With
    ``trickle`` (seconds) each reply goes out one byte at a time, that far apart, as a
    hostile or choked server would. ``sent`` counts the reply bytes sent; ``cut_off`` is set
    when the client hung up in the middle of a reply.
    """

    def __init__(self, respond=None, backlog=16, trickle=None):
        self.respond = respond
        self.trickle = trickle
        self.sent = 0
        self.cut_off = threading.Event()
        self.commands: list[list[bytes]] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.listener.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        if self.respond is None:
            return  # hold the connection, say nothing
        stream = conn.makefile("rb")
        try:
            while not self.stopping.is_set():
                args = _read_command(stream)
                if args is None:
                    return
                self.commands.append(args)
                reply = self.respond(args)
                if reply:
                    self._send(conn, reply)
        except (OSError, ValueError):
            return

    def _send(self, conn, reply):
        chunks = [reply] if isinstance(reply, bytes) else reply
        try:
            for chunk in chunks:
                if self.trickle is None:
                    conn.sendall(chunk)
                    self.sent += len(chunk)
                    continue
                for index in range(len(chunk)):
                    if self.stopping.wait(self.trickle):
                        return
                    conn.sendall(chunk[index : index + 1])
                    self.sent += 1
        except OSError:
            self.cut_off.set()
            raise

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        for conn in self.connections:
            conn.close()
        self.listener.close()


def _read_command(stream) -> list[bytes] | None:
    line = stream.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.strip().split()
    args = []
    for _ in range(int(line[1:])):
        length = int(stream.readline()[1:])
        args.append(stream.read(length + 2)[:-2])
    return args


def bulk(data: str | bytes) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return b"$%d\r\n%s\r\n" % (len(data), data)
