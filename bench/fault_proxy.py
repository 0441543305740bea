"""A TCP proxy the chaos suite puts between a service and its broker or database, to cut the link in the
ways a network or a server does, on the suite's private instances only.

- ``refuse()``: the listening socket is closed and every open connection reset (RST): a new connection is
  refused (``ECONNREFUSED``), as when the server is down. ``restore()`` listens again on the same port.
- ``hang()``: nothing crosses in either direction and nothing is closed; new connections are accepted but
  hang too (a firewall that drops packets, a server that stopped answering). ``restore()`` lets the held
  bytes through.
- ``partition()``: ``hang()`` for one service's link only (the suite gives each process its own proxy), then
  the open connections are reset when the partition heals, as a NAT or firewall forgets its state.

It runs on plain OS threads (the bench is not monkey-patched) and counts the connections it made and
refused, so a fault can be verified: a refusal must have refused something, a hang must have held a
connection.
"""

from __future__ import annotations

import socket
import struct
import threading


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], name: str, port: int = 0):
        self.upstream, self.name = upstream, name
        self._lock = threading.Lock()
        self._pairs: list[tuple] = []
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self.connections_made = 0
        self.connections_refused_upstream = 0
        self._listener = self._listen(port or _port_outside_ephemeral_range())
        self.port = self._listener.getsockname()[1]

    def _listen(self, port: int) -> socket.socket:
        listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        threading.Thread(target=self._serve, args=(listener,), daemon=True, name=f"proxy-{self.name}").start()
        return listener

    def _serve(self, listener: socket.socket) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refusing, or the end
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                self.connections_refused_upstream += 1
                _reset(client)
                continue
            self.connections_made += 1
            pumps = [threading.Thread(target=self._pump, args=(client, upstream), daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client), daemon=True)]
            with self._lock:
                self._pairs.append((client, upstream, pumps))
            for pump in pumps:
                pump.start()

    def _pump(self, source, sink) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def open_connections(self) -> int:
        with self._lock:
            self._pairs = [pair for pair in self._pairs if any(p.is_alive() for p in pair[2])]
            return len(self._pairs)

    def reset_all(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, _ in pairs:
            _reset(client)
            _reset(upstream)
        return len(pairs)

    def refuse(self) -> int:
        """Stop listening and reset every open connection; returns how many were reset."""
        _stop_listening(self._listener)
        return self.reset_all()

    def hang(self) -> int:
        """Hold every byte, in both directions, until ``restore()``; returns the connections held."""
        self._flowing.clear()
        return self.open_connections

    def partition(self) -> int:
        return self.hang()

    def restore(self, reset_held: bool = False) -> None:
        if self._listener.fileno() == -1:
            self._listener = self._listen(self.port)
        if reset_held:
            self.reset_all()
        self._flowing.set()

    def refusing(self) -> bool:
        """Is a connection to the proxy refused right now? (the verification of ``refuse()``)"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        _stop_listening(self._listener)
        self.reset_all()


def _port_outside_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral range: while the proxy refuses, clients keep connecting to its
    port, and one whose own source port happened to be that port would connect to itself (TCP simultaneous
    open) and see no refusal."""
    import random

    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return 0


def _stop_listening(listener: socket.socket) -> None:
    """Close a listening socket that another thread is blocked in ``accept()`` on. ``close()`` alone is not
    enough on Linux: the blocked call keeps the socket listening, so the next client is still accepted (the
    refusal was not verified at its start). ``shutdown()`` wakes the accept and stops the listening first."""
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    listener.close()


def _reset(sock: socket.socket) -> None:
    """End a connection with an RST (linger 0), also when a pump thread is blocked in ``recv()`` on it: like
    ``close()`` on a listener, ``close()`` alone would wait for that call, which for the side that sends
    nothing (a database session idle in a transaction) is for ever; ``shutdown(SHUT_RD)`` wakes it first."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
