"""The refused port the tests use for "service down" (tests/ports.py) keeps its promises."""

from __future__ import annotations

import errno
import socket

import pytest

from tests.ports import refused_port


def test_a_refused_port_refuses_connections_and_nobody_else_can_take_it():
    with refused_port() as port:
        for _ in range(3):  # refused every time, not only once
            with (
                pytest.raises(ConnectionRefusedError) as refused,
                socket.create_connection(("127.0.0.1", port), timeout=2),
            ):
                pass
            assert refused.value.errno == errno.ECONNREFUSED
        # A server binding it, even with SO_REUSEADDR as http.server does, is turned away.
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
