"""Every service's HTTP entrypoints come from shared.web (TCP_NODELAY): nameko shares one web server per
container and server class, so a stray nameko ``@http`` would try to listen on the port a second time."""

from __future__ import annotations

import inspect
import socket

import pytest
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

from sanji.cli import _service_class
from shared.config import SERVICES
from shared.web import NoDelayHttpRequestHandler, NoDelayWebServer


@pytest.mark.parametrize("service", SERVICES)
def test_every_http_entrypoint_is_the_no_delay_one(service):
    handlers = [entrypoint for _, attribute in inspect.getmembers(_service_class(service))
                for entrypoint in getattr(attribute, "nameko_entrypoints", ())
                if isinstance(entrypoint, HttpRequestHandler)]
    assert handlers, f"{service} serves no HTTP"
    assert all(type(handler) is NoDelayHttpRequestHandler for handler in handlers), service


def test_an_accepted_connection_gets_tcp_nodelay(monkeypatch):
    handed_on = []
    # nameko's own process_request serves the WSGI app; here only what it is handed matters.
    monkeypatch.setattr(WebServer, "process_request", lambda self, sock, address: handed_on.append(sock))
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()):
        accepted, address = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            NoDelayWebServer().process_request(accepted, address)
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert handed_on == [accepted]
