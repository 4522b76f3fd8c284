"""Ports for the servers: a free pair for benchmarks and tests, and the check that a chosen one is free."""

from __future__ import annotations

import errno
import socket

from mnn_edge.errors import MnnEdgeError


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` right now (the kernel's pick), for benchmarks and tests."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_port_free(host: str, port: int, flag: str) -> None:
    """Bind once and let go: a port in use is one line now, not a server that dies while starting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MnnEdgeError(f"--host {host}: not an address of this machine ({e.strerror})") from e
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As the servers do: connections of a previous run in TIME_WAIT do not make a port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise MnnEdgeError(f"port {port} on {host} is already in use (another server?): pick a free one "
                                   f"with {flag}") from e
            raise MnnEdgeError(f"cannot listen on {host}:{port} ({e.strerror}): check --host and {flag}") from e
