"""Real receivers of alerts on localhost, for the tests and benchmarks, with outages to
inject: an HTTP endpoint (webhook or Slack-shaped) that checks the signature of what it is
sent, and an SMTP server (aiosmtpd, a development requirement).

Each receiver answers from a script of behaviours, one per request, then `default`:
an HTTP status (500, 400, 200), ("429", seconds) for a 429 with Retry-After, or "timeout"
(answers after the client's timeout); stopping it makes connections refused."""

import hashlib
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

SLOW_SECONDS = 1.5  # a "timeout" answer comes this late; tests set the client's timeout under it


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HTTPReceiver:
    def __init__(self, *, secret=None, path="/hook"):
        self.secret, self.path, self.port = secret, path, free_port()
        self.script, self.default = [], 200
        self.requests = []  # (headers, raw body, status answered) of every request
        self.bad_signatures = 0
        self._server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def delivered(self):
        """The JSON bodies answered with 2xx."""
        return [json.loads(body) for _, body, status in self.requests if 200 <= status < 300]

    @property
    def delivered_ids(self):
        """X-Autoscaler-Delivery of each request answered with 2xx."""
        return [headers["X-Autoscaler-Delivery"] for headers, _, status in self.requests if 200 <= status < 300]

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                behaviour = receiver.script.pop(0) if receiver.script else receiver.default
                if receiver.secret is not None:
                    expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    if not hmac.compare_digest(expected, self.headers.get("X-Autoscaler-Signature", "")):
                        receiver.bad_signatures += 1
                        behaviour = 401
                if behaviour == "timeout":
                    # Recorded as 599 (the client gives up before the answer), then answered late.
                    receiver.requests.append((dict(self.headers), body, 599))
                    time.sleep(SLOW_SECONDS)
                    behaviour = 200
                else:
                    receiver.requests.append((dict(self.headers), body, behaviour[0] if isinstance(behaviour, tuple) else behaviour))
                status = behaviour[0] if isinstance(behaviour, tuple) else behaviour
                try:
                    self.send_response(int(status))
                    if isinstance(behaviour, tuple):
                        self.send_header("Retry-After", str(behaviour[1]))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (a "timeout" answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class SMTPInbox:
    """aiosmtpd handler: keeps each message, or answers `fail_with` (e.g. '451 ...')."""

    def __init__(self):
        self.messages, self.fail_with = [], None

    async def handle_DATA(self, server, session, envelope):
        if self.fail_with:
            return self.fail_with
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


class SMTPReceiver:
    def __init__(self):
        self.inbox, self.port, self._controller = SMTPInbox(), free_port(), None

    @property
    def messages(self):
        return self.inbox.messages

    def start(self):
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
