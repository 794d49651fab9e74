"""A 127.0.0.1 port that refuses connections for as long as a test needs it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """Yield a 127.0.0.1 port where every TCP connection is refused (ECONNREFUSED).

    The socket stays bound, without listening, until the block ends: the kernel refuses
    connections to it exactly as to a closed port, and no other process (another xdist
    worker, a server started by another test) can bind the port meanwhile. Binding port 0
    and closing the socket before use, as the tests did, freed the port for anyone to take
    (`test_api_down_for_the_whole_run_lists_every_batch` once failed that way).
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
