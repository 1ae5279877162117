"""A TCP proxy on loopback that can slow a connection down or cut the network.

Why: "an upload cut off half-way" has to happen for real, with the client's socket and the
server's own handling of a broken request in the loop. Put between a client and a server, this
proxy forwards bytes unchanged, optionally at a bounded rate (so a small upload takes long
enough to be caught mid-way), and on ``cut()`` closes every connection and refuses new ones
until ``restore()``: the network going away, as the client and the server both see it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["TcpProxy"]

CHUNK = 64 * 1024
IO_TIMEOUT = 60.0  # seconds a forwarding thread waits on a silent socket


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``target`` (host, port) until ``stop()``."""

    def __init__(self, target: tuple[str, int], rate: int | None = None) -> None:
        self.target = target
        self.rate = rate  # bytes per second from client to server; None = as fast as it goes
        self.sent_upstream = 0  # bytes forwarded from clients to the server, all connections
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close every open connection and refuse new ones (the network is gone)."""
        self._cut.set()
        self._close_all()

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._cut.clear()

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._stop.set()
        self._close_all()
        self._listener.close()
        self._thread.join(timeout=5)

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=IO_TIMEOUT)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(IO_TIMEOUT)
            with self._lock:
                self._sockets |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        started = time.monotonic()
        forwarded = 0
        try:
            while not self._cut.is_set():
                data = src.recv(CHUNK if not (upstream and self.rate) else min(CHUNK, self.rate))
                if not data:
                    break
                if upstream and self.rate:
                    forwarded += len(data)
                    ahead = forwarded / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                    if self._cut.is_set():
                        break
                dst.sendall(data)
                if upstream:
                    with self._lock:
                        self.sent_upstream += len(data)
        except OSError:
            pass
        finally:  # one side ended: end both, the other thread then sees its socket closed
            with self._lock:
                self._sockets -= {src, dst}
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
