"""The texts a verb works on: its TEXT argument, or with '-' one text per line of stdin (shared by
``predict`` and ``preprocess``, so that both answer every input line, blank ones included, once)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from ..errors import InputValueError
from ..io import without_line_break


def texts_from(arg: str) -> Iterator[str]:
    """``[arg]``, or for ``-`` each line of stdin without its line break. Lines are decoded as
    UTF-8 strictly: a line that is not UTF-8 stops the run with a typed error naming it, instead of
    a decoding traceback or (under a C locale) bytes passed on silently as escapes."""
    if arg != "-":
        yield arg
        return
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in place of stdin (tests, embedding)
        for line in sys.stdin:
            yield without_line_break(line)
        return
    for n, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputValueError(f"stdin line {n} is not valid UTF-8 (byte {exc.start + 1}); "
                                  "convert the input to UTF-8 first") from None
        # A binary stream splits at "\n" only; a bare "\r" ends a line too (universal newlines,
        # as a text-mode stdin reads them).
        yield from without_line_break(line).split("\r")
