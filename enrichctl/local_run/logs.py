"""Where the in-process handlers' output goes during a local run.

On AWS each function's logs (Powertools Logger) go to CloudWatch; locally they would drown
the progress bar, so they go to a file (`<output-dir>/lambda.log`) while the run lasts, and
back to stdout after it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any


def _stream_handlers() -> Iterator[logging.StreamHandler[Any]]:
    for name in list(logging.root.manager.loggerDict):
        for handler in getattr(logging.getLogger(name), "handlers", []):
            if isinstance(handler, logging.StreamHandler):
                yield handler


def _set_stream(handler: logging.StreamHandler[Any], stream: Any) -> None:
    """`handler.setStream(stream)`, except that a closed old stream is not flushed first."""
    if getattr(handler.stream, "closed", False):
        with handler.lock:  # type: ignore[union-attr]
            handler.stream = stream
    else:
        handler.setStream(stream)


@contextlib.contextmanager
def handler_output_to(stream: Any) -> Iterator[None]:
    """Send handler logs (Powertools Logger) and anything they print to `stream`."""
    stdout = sys.stdout
    # The steps' Powertools logger always goes to `stream`, whatever stdout it was created
    # with (under pytest, the capture of collection time): its lines are the handler log.
    steps = set(logging.getLogger("imdb-enrichment").handlers)
    for handler in _stream_handlers():
        # A closed stream is an earlier stdout that went away (pytest's capture of an
        # earlier test, whose handlers were put back there): writing to it fails noisily.
        if (
            handler in steps
            or handler.stream in (stdout, sys.__stdout__)
            or getattr(handler.stream, "closed", False)
        ):
            _set_stream(handler, stream)
    quiet = [(logging.getLogger(n), logging.getLogger(n).level) for n in ("moto", "botocore")]
    for logger, _ in quiet:
        logger.setLevel(logging.CRITICAL)  # moto logs every failed state at ERROR
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        # Includes loggers created during the run (handlers imported for the first time):
        # they captured `stream` as their stdout, which is about to be closed.
        for handler in _stream_handlers():
            if handler.stream is stream:
                _set_stream(handler, stdout)
        for logger, level in quiet:
            logger.setLevel(level)
