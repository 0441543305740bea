"""Local stand-ins for what the notification service talks to, bound to 127.0.0.1 only: an HTTP server
(the SMS gateway, a department's webhook endpoint) and a real SMTP server (aiosmtpd, in a subprocess)."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import eventlet
import eventlet.wsgi

from shared.config import REPO_ROOT
from tests.support.waiting import wait_until  # noqa: F401 - the notification tests import it from here


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


Responder = Callable[[RecordedRequest], tuple[int, dict]]


def _accepted(request: RecordedRequest) -> tuple[int, dict]:
    return 200, {"message_id": f"provider-{abs(hash(request.body)) % 10**8}"}


class HttpStandIn:
    """Records every request; answers what ``responder(request)`` says (status, JSON document) per path."""

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self.responders: dict[str, Responder] = {}
        self._socket = eventlet.listen(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = eventlet.spawn(eventlet.wsgi.server, self._socket, self._app, log_output=False)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, responder: Responder) -> None:
        self.responders[path] = responder

    def to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        request = RecordedRequest(environ["REQUEST_METHOD"], environ["PATH_INFO"], headers, body)
        self.requests.append(request)
        status, document = self.responders.get(request.path, _accepted)(request)
        payload = json.dumps(document).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def stop(self) -> None:
        self._thread.kill()
        self._socket.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """A real SMTP server (aiosmtpd) that keeps what it receives as files the test reads back."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.host = "127.0.0.1"
        self.port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{self.host}:{self.port}",
             "-c", "tests.support.notification_smtp.SavingHandler", str(self.directory)],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(self._listening, timeout=20, what="the SMTP server to listen")
        except AssertionError:
            self.stop()
            raise

    def _listening(self) -> bool:
        if self._process.poll() is not None:
            raise AssertionError(f"aiosmtpd exited: {self._process.stderr.read().decode(errors='replace')}")
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.directory.glob("*.eml"))]

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._process.stderr:
            self._process.stderr.close()
