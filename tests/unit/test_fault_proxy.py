"""The fault suite's TCP proxy (bench/fault_proxy.py) does the faults it claims: a refusal refuses at once.

The suite runs the proxy with the standard library's blocking sockets and OS threads, and the root conftest
monkey-patches eventlet into this process (where closing a green socket wakes its accept), so the proxy is
tried in a child interpreter of its own, as the suite runs it."""

import subprocess
import sys
import textwrap

from bench.stack import REPO

SCRIPT = textwrap.dedent("""
    import socket, threading, time
    from bench.fault_proxy import FaultProxy

    upstream = socket.create_server(("127.0.0.1", 0))

    def echo():
        while True:
            try:
                client, _ = upstream.accept()
            except OSError:
                return
            client.sendall(client.recv(100))
            client.close()

    threading.Thread(target=echo, daemon=True).start()

    def round_trip(port):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(b"ping")
            return connection.recv(100)

    proxy = FaultProxy(upstream.getsockname(), "test")
    assert round_trip(proxy.port) == b"ping"
    time.sleep(0.2)  # the proxy's thread is blocked in accept() again
    proxy.refuse()
    print("refusing_at_once", proxy.refusing())
    proxy.restore()
    print("accepting_again", not proxy.refusing())
    print("round_trip_again", round_trip(proxy.port) == b"ping")
    proxy.close()

    # a held connection, reset on restore: the server side learns of it although it was sending nothing
    # (a database session idle in a transaction waits in recv() for its client's next statement)
    server = socket.create_server(("127.0.0.1", 0))
    proxy = FaultProxy(server.getsockname(), "test-hang")
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    session, _ = server.accept()
    session.settimeout(3)
    time.sleep(0.2)
    proxy.hang()
    client.sendall(b"COMMIT")  # held by the proxy
    time.sleep(0.2)
    proxy.restore(reset_held=True)
    try:
        ended = session.recv(100) == b""
    except ConnectionResetError:
        ended = True
    except TimeoutError:
        ended = False
    print("server_side_ended", ended)
    proxy.close()
""")


def test_refuse_refuses_the_very_next_connection_and_restore_accepts_again():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["refusing_at_once", "True", "accepting_again", "True",
                                     "round_trip_again", "True",
                                     "server_side_ended", "True"], result.stdout
