"""A TCP proxy in front of the broker that can break every connection with a reset (RST).

Closing a connection through the management API is a polite AMQP close: the client is told, and the
broker waits for its reply. A broker that crashes or restarts, or a network fault, is not polite: the
client's socket is reset under it, and a write on it (an ack, a reply) raises ``ConnectionResetError``
or ``BrokenPipeError``. ``reset()`` does exactly that to every connection made through the proxy.

The proxy runs on real OS threads and sockets, outside eventlet's hub, so that ``reset()`` completes
without yielding to any greenthread: a test can reset the connection from inside a handler and have
the handler's next write meet the reset socket, before the consumer's own read has noticed it.

``stall()`` stops forwarding in both directions without closing anything (what a broker that blocks its
publishers, or a network that drops packets, looks like to a client): the bytes wait in the proxy until
``resume()``. New connections are accepted while stalled, but nothing crosses them either.
"""

from __future__ import annotations

import struct

from eventlet import patcher

real_socket = patcher.original("socket")
real_threading = patcher.original("threading")


class ResettingProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5672)):
        self.upstream = upstream
        self._listener = real_socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = real_threading.Lock()
        self._pairs: list[tuple] = []
        self._closed = False
        self._flowing = real_threading.Event()
        self._flowing.set()
        real_threading.Thread(target=self._serve, daemon=True).start()

    def amqp_uri(self, broker_uri: str) -> str:
        """``broker_uri`` (user, password, vhost) with its host and port replaced by the proxy's."""
        scheme, rest = broker_uri.split("://", 1)
        credentials, _, address_and_vhost = rest.rpartition("@")
        _, _, vhost = address_and_vhost.partition("/")
        return f"{scheme}://{credentials}@127.0.0.1:{self.port}/{vhost}"

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = real_socket.create_connection(self.upstream)
            pumps = [real_threading.Thread(target=self._pump, args=(client, upstream), daemon=True),
                     real_threading.Thread(target=self._pump, args=(upstream, client), daemon=True)]
            with self._lock:
                self._pairs.append((client, upstream, pumps))
            for pump in pumps:
                pump.start()

    def stall(self) -> None:
        """Stop forwarding: every byte read from either side is held until ``resume()``."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _pump(self, source, sink) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass  # the other direction was reset or closed

    def reset(self) -> int:
        """Reset every open connection (the client gets an RST, the broker sees its peer vanish)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, pumps in pairs:
            for sock in (client, upstream):
                try:  # wake the pumps' reads without sending anything to either peer
                    sock.shutdown(real_socket.SHUT_RD)
                except OSError:
                    pass
            for pump in pumps:
                pump.join(timeout=5)
            for sock in (client, upstream):
                sock.setsockopt(real_socket.SOL_SOCKET, real_socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # linger 0: the peer gets an RST, not a FIN
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(real_socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self._listener.close()
        self._flowing.set()  # a stalled pump must not keep reset() waiting
        self.reset()
