"""Cutting a CSV backlog into blocks for worker processes (``classify --jobs N``): from the bytes
where quote parity proves that the row reader ends its records there, by the row reader itself
elsewhere. Either way every block's text, first line and record count are those of the row reader's
own cut (``_reader_blocks``), and the blocks' rows are the rows of reading the whole file."""

from __future__ import annotations

import random

import pytest

import lapor_nlp.batch.inputs as inputs
from lapor_nlp.batch.inputs import _reader_blocks, _record_ends, csv_blocks
from lapor_nlp.io import iter_rows, open_csv_body


@pytest.fixture(autouse=True)
def arrow_off(monkeypatch):
    # Arrow reading (opt-in) needs each block's field counts: its blocks are always the reader's.
    monkeypatch.setenv("LAPOR_NLP_ARROW", "0")


def reader_cut(path, size) -> list[tuple]:
    fh, header, line0, delimiter = open_csv_body(path)
    with fh:
        if header is None:
            return []
        return [(b.read_text(), b.line0, b.records) for b in _reader_blocks(fh, header, delimiter, line0, size)]


def assert_same_cut(path, size):
    blocks = list(csv_blocks(path, size))
    assert [(b.read_text(), b.line0, b.records) for b in blocks] == reader_cut(path, size)
    assert [row for b in blocks for row in b.rows()] == list(iter_rows(path, "csv"))


# Pieces of a record: fields with commas, quotes (doubled, stray, unclosed), line breaks of the
# three kinds inside and between records, blank lines, NUL, bytes that are not UTF-8.
WELL_FORMED = ['plain', '', '"quoted, with comma"', '"a ""doubled"" quote"', '"multi\nline"',
               '"cr\r\ninside"', '"lone\rcr"', 'é€ text', '" spaces "', '""']
TROUBLE = ['stray"quote', '"closed"then', 'x\x00y', '"unclosed', '\xff\xfe bytes']
ENDS = ["\n", "\r\n", "\r"]


def random_file(rng: random.Random, n: int, trouble: float, delimiter: str = ",") -> bytes:
    end = rng.choice(ENDS)
    out = [delimiter.join(["id", "text", '"multi\nline header"']) + end]
    for i in range(n):
        if rng.random() < 0.05:
            out.append(rng.choice(ENDS))  # a blank line
            continue
        fields = [str(i)] + [rng.choice(TROUBLE if rng.random() < trouble else WELL_FORMED)
                             for _ in range(rng.choice([2, 2, 2, 1, 3]))]
        out.append(delimiter.join(fields) + (rng.choice(ENDS) if rng.random() < 0.1 else end))
    text = "".join(out)
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")  # no line break after the last record
    return text.encode("utf-8", "surrogateescape").replace("\xff\xfe".encode(), b"\xff\xfe")


@pytest.mark.parametrize("seed", range(40))
def test_random_files_are_cut_as_the_row_reader_cuts_them(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    monkeypatch.setattr(inputs, "_READ", rng.choice([7, 64, 1000, 1 << 20]))  # reads end anywhere
    path = tmp_path / "backlog.csv"
    path.write_bytes(random_file(rng, rng.randint(0, 300), trouble=rng.choice([0, 0, 0.002, 0.05])))
    for size in (1, 3, 50, 1000):
        assert_same_cut(path, size)


def test_well_formed_files_are_cut_from_the_bytes(tmp_path, monkeypatch):
    """The proof holds for every quote a CSV writer puts in a file: the reader is not needed."""
    rng = random.Random(7)
    path = tmp_path / "backlog.csv"
    path.write_bytes(random_file(rng, 400, trouble=0))
    monkeypatch.setattr(inputs, "_READ", 512)

    def no_reader(*args, **kwargs):
        raise AssertionError("the row reader was asked to cut a well-formed file")

    expected = reader_cut(path, 17)
    monkeypatch.setattr(inputs, "_reader_blocks", no_reader)
    assert [(b.read_text(), b.line0, b.records) for b in csv_blocks(path, 17)] == expected


@pytest.mark.parametrize("data,proved", [
    (b'1,"a ""b"" c",x\n', True),
    (b'1,"a\nb",x\r\n2,y,z\r', True),
    (b'1,a"b,x\n', False),          # a quote inside an unquoted field is text to the reader
    (b'1,"a"b,x\n', False),         # text after a closing quote: a strict error
    (b'1,ab"\n",x\n', False),       # parity pairs a literal quote with the next line's
    (b'1,"a,x\n2,b,c\n', False),    # a quote that never closes
    (b'1,a\x00b,x\n', False),       # NUL
])
def test_what_parity_proves(data, proved):
    assert (_record_ends(data, ord(","), eof=True) is not None) == proved


def test_blank_lines_are_no_records():
    data = b"1,a\n\n\r\n2,b\r\r3,c"
    stops, lines = _record_ends(data, ord(","), eof=True)
    assert stops.tolist() == [4, 11, 15] and lines.tolist() == [3, 4, 6, 10, 11]
    # without the end of the file, a last "\r" waits for the next byte ("\r\n"?)
    stops, _ = _record_ends(b"1,a\r", ord(","), eof=False)
    assert stops.tolist() == []


def test_a_literal_quote_that_parity_would_pair_across_lines(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b'id,text\n1,ab"\n",x\n2,c\n' * 3)
    for size in (1, 2, 5):
        assert_same_cut(path, size)


@pytest.mark.parametrize("data", [b"", b"id,text", b"id,text\n", b"id,text\r\n\r\n", b'"id\nx",text\n1,a'])
def test_empty_and_header_only_files(tmp_path, data):
    path = tmp_path / "b.csv"
    path.write_bytes(data)
    assert_same_cut(path, 2)


def test_semicolon_files(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "export.csv"  # the delimiter is sniffed from the header
    path.write_bytes(random_file(rng, 200, trouble=0, delimiter=";"))
    assert open_csv_body(path)[3] == ";"
    assert_same_cut(path, 9)


def _scanned(monkeypatch) -> list[int]:
    sizes: list[int] = []
    real = inputs._record_ends

    def counting(data, *args):
        sizes.append(len(data))
        return real(data, *args)

    monkeypatch.setattr(inputs, "_record_ends", counting)
    return sizes


def test_each_byte_is_scanned_about_once_even_in_blocks_larger_than_a_read(tmp_path, monkeypatch):
    rng = random.Random(11)
    path = tmp_path / "backlog.csv"
    path.write_bytes(random_file(rng, 2000, trouble=0))
    expected = reader_cut(path, 700)
    monkeypatch.setattr(inputs, "_READ", 1000)
    sizes = _scanned(monkeypatch)
    assert [(b.read_text(), b.line0, b.records) for b in csv_blocks(path, 700)] == expected
    assert sum(sizes) < 1.5 * path.stat().st_size  # not once per read for every pending byte


def test_a_stray_quote_early_in_a_long_file_stops_the_byte_scan_soon(tmp_path, monkeypatch):
    path = tmp_path / "backlog.csv"
    rows = [f"{i},jalan rusak {'x' * 40},Surabaya\n" for i in range(3000)]
    rows[2] = '2,monitor 12" rusak,Surabaya\n'  # text to the reader; parity sees no record end after it
    path.write_bytes(("id,text,kota\n" + "".join(rows)).encode())
    monkeypatch.setattr(inputs, "_READ", 256)
    sizes = _scanned(monkeypatch)
    assert_same_cut(path, 100)
    assert len(sizes) <= 4 and sum(sizes) < 12 * 256  # then the row reader cut the rest


def test_a_header_longer_than_many_reads(tmp_path):
    path = tmp_path / "b.csv"
    long_name = "x" * 70_000 + "\r\n" + "y" * 70_000 + "\r" + "z" * 70_000  # over several 64 KiB reads
    path.write_bytes(f'id,"{long_name}",text\r\n1,a,b\r\n2,c,d\r\n'.encode())
    assert_same_cut(path, 1)


def _records_by_recording(lines, header, line0):
    """csv_records as 0.5.3 wrote it: every line the reader takes recorded as it passes (the
    oracle for the raw text of a malformed record)."""
    import csv

    consumed: list[str] = []

    def recording():
        for line in lines:
            consumed.append(line)
            yield line

    reader = csv.reader(recording(), strict=True)
    start = line0 + 1
    while True:
        consumed.clear()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield start, "".join(consumed)
            start = line0 + reader.line_num + 1
            continue
        if values and len(values) != len(header):
            yield start, "".join(consumed)
        start = line0 + reader.line_num + 1


@pytest.mark.parametrize("seed", range(3))
def test_a_malformed_records_raw_text_is_its_lines_across_the_readers_blocks(tmp_path, seed):
    # Long files with many bad records and records of many lines: their lines straddle the row
    # reader's blocks of lines (io.LineLog).
    from lapor_nlp.io import ERROR, LINE, RAW, without_line_break

    rng = random.Random(seed)
    data = random_file(rng, 6000, trouble=0.2).replace(b"\xff\xfe", b"")  # (decodable: one oracle)
    long_field = '"' + "\n".join(["baris"] * 700) + '"'  # one record of 700 lines, more than a block
    data += ("\n9999,x," + long_field + "\n10000,only two\n10001," + long_field + ",x,y\n").encode()
    path = tmp_path / "long.csv"
    path.write_bytes(data)
    fh, header, line0, _ = open_csv_body(path)
    with fh:
        expected = [(line, without_line_break(raw)) for line, raw in _records_by_recording(fh, header, line0)]
    got = [(r[LINE], r[RAW]) for r in iter_rows(path, "csv") if ERROR in r]
    assert got == expected
    assert len(got) > 300 and max(raw.count("\n") for _, raw in got) > 600


def test_a_block_cut_from_the_bytes_is_read_by_its_worker_and_refused_if_the_file_changed(tmp_path):
    import pickle

    from lapor_nlp.errors import BatchInputError

    path = tmp_path / "in.csv"
    path.write_bytes(random_file(random.Random(3), 300, trouble=0.0))
    blocks = list(csv_blocks(path, 50))
    assert blocks and all(b.text is None for b in blocks)  # the parent holds no text
    sent = [pickle.loads(pickle.dumps(b)) for b in blocks]  # what a worker gets: small
    assert max(len(pickle.dumps(b)) for b in blocks) < 1000
    assert [row for b in sent for row in b.rows()] == list(iter_rows(path, "csv"))
    again = [pickle.loads(pickle.dumps(b)) for b in blocks]
    with path.open("ab") as fh:
        fh.write(b"1,x\n")
    with pytest.raises(BatchInputError, match="changed while it was being classified"):
        again[-1].read_text()
