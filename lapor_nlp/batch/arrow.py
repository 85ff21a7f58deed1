"""Reading a CSV backlog's chunks with Arrow, opt-in (``LAPOR_NLP_ARROW=1``, pyarrow installed).

The main process then cuts the file into :class:`~lapor_nlp.batch.inputs.CsvBlock` s with the row
reader (so the chunks, rows and line numbers are the row reader's) and sends each as one string; the
worker parses it with Arrow. A block is parsed with Arrow only when the row reader found every
record in it well formed, and Arrow's values must add up to the same rows and characters; anything
Arrow refuses (bytes that are not UTF-8, a ragged row) goes to the row reader, so every reject keeps
its reason and line number. The output is the same either way (``tests/test_batch_arrow.py``).

Why not the default: measured on a 2-core host (``bench/batch.py --variants``, see
docs/benchmarks.md), cutting the file still costs the main process one pass of the row reader, so
the Arrow parse comes on top of it. The CPU per row was the same or higher, and pyarrow added
about 70 MiB RSS to each process. Reading with Arrow pays only where
the chunks could be cut without the row reader, and that is not exact for malformed files.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

ON = ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def _pyarrow_csv() -> bool:
    try:
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def arrow_enabled() -> bool:
    """Whether CSV chunks are read with Arrow here: ``LAPOR_NLP_ARROW=1`` and pyarrow installed."""
    return os.environ.get("LAPOR_NLP_ARROW", "0").strip().lower() in ON and _pyarrow_csv()


def read_block(data: bytes, header: list[str], delimiter: str):
    """The table of a chunk's records (every column text, as the row reader reads it), or None
    when Arrow refuses the bytes."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, use_threads=False,
                                           block_size=max(len(data) + 1, 1 << 20)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                              escape_char=False, newlines_in_values=True,
                                              ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False, check_utf8=True))
    except (pa.ArrowInvalid, pa.ArrowException, ValueError):
        return None


def line_breaks(table):
    """Per row, the line breaks inside its values ("\\r\\n", "\\r" or "\\n", as a file read with
    ``newline=""`` counts them): with them, each record's first physical line is known."""
    import numpy as np
    import pyarrow.compute as pc

    total = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        total += pc.count_substring_regex(col, "\r\n|\r|\n").to_numpy(zero_copy_only=False)
    return total


def text_length(table) -> int:
    """Characters in all the table's values."""
    import pyarrow.compute as pc

    return sum(int(pc.sum(pc.utf8_length(col)).as_py() or 0) for col in table.columns)
