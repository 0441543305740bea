"""nameko's ``@http`` entrypoint, with Nagle's algorithm off on every accepted connection.

eventlet's WSGI server writes a response in several ``send`` calls. With Nagle's algorithm on, the last
partial segment of a body of a few tens of kilobytes waits for the client's delayed ACK (40 ms on Linux):
measured on routing's ``GET /v1/items``, 5 ms for 8 KB and 53 ms for 20 KB, every time. The console calls
these APIs on every page, so the wait landed on people. TCP_NODELAY sends each write at once.

Every ``@http`` of a container must come from here: nameko shares one web server per container per server
class, and two classes would both try to listen on the port.
"""

from __future__ import annotations

import socket

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer


class NoDelayWebServer(WebServer):
    def process_request(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client has gone already: the request fails as it would anyway
            pass
        return super().process_request(sock, address)


class NoDelayHttpRequestHandler(HttpRequestHandler):
    server = NoDelayWebServer()


http = NoDelayHttpRequestHandler.decorator
