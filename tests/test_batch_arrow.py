"""The CSV side of classify: chunks cut as text and read with Arrow (LAPOR_NLP_ARROW=1) give the
same rows, line numbers, rejects and output bytes as the row reader, whether a chunk is read by
Arrow or falls back to the row reader; classify writes the same files with and without Arrow; the
fast CSV writer writes csv.writer's bytes."""

from __future__ import annotations

import csv
import io
import random

import pytest

from lapor_nlp.batch import classify_file, output_paths
from lapor_nlp.io import LINE, iter_rows

pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyarrow.csv")

from lapor_nlp.batch.formats import csv_columns_text, csv_text  # noqa: E402
from lapor_nlp.batch.inputs import csv_blocks  # noqa: E402

@pytest.fixture(autouse=True)
def arrow_on(monkeypatch):
    """Arrow reading is opt-in: these tests switch it on (and off where they compare)."""
    monkeypatch.setenv("LAPOR_NLP_ARROW", "1")


TEXTS = ["jalan rusak parah di depan sekolah, mohon segera diperbaiki",
         'lampu PJU mati, warga bilang "sudah lapor" tapi belum ada tindakan',
         "sampah menumpuk di TPS belum diangkut seminggu",
         "air PDAM tidak mengalir sejak kemarin pagi",
         "banjir setinggi lutut di jalan raya tiap hujan deras"]


def _line(values, end="\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=end).writerow(values)
    return buf.getvalue().encode("utf-8")


def messy_bytes(n: int = 80, seed: int = 0, end: str = "\n") -> bytes:
    """A backlog with every kind of trouble a reader meets among ordinary rows in its first half,
    and only rows Arrow can read (multi-line ones included) in its second half."""
    rng = random.Random(seed)
    out = [b"\xef\xbb\xbf" + _line(["id", "text", "regency", "note"], end)]  # a BOM before the header
    for i in range(n):
        text = rng.choice(TEXTS)
        kind = i % 13 if i < n // 2 else i % 5
        if kind == 3:
            out.append(_line([f"NL{i}", text.replace(", ", ",\n", 1), "", "newline"], end))
        elif kind == 4:
            out.append(_line([f"CR{i}", text.replace(" ", "\r\n", 1), "Kota Malang", "crlf inside"], end))
        elif kind == 5:
            out.append(f"U{i},jalan rusak ".encode() + b"\xff\xfe" + f" parah,Kota Malang,latin-1{end}".encode())
        elif kind == 6:
            out.append(f"M{i},too,many,fields,here{end}".encode())
        elif kind == 7:
            out.append(f'Q{i},"quoted"then text,,strict error{end}'.encode())
        elif kind == 8:
            out.append(f'B{i},a "quote" inside unquoted text,,fine{end}'.encode())
        elif kind == 9:
            out.append(_line([f"E{i}", "   ", "", "blank text"], end))
        elif kind == 10:
            out.append(end.encode())  # a blank line between records
        elif kind == 11:
            out.append(f"S{i},short row{end}".encode())
        else:
            out.append(_line([f"R{i}", text, rng.choice(["", "Kota Surabaya"]), f'n"{i}'], end))
    return b"".join(out)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", "no final newline"])
@pytest.mark.parametrize("size", [1, 4, 13, 1000])
def test_blocks_give_the_row_readers_rows_and_lines(tmp_path, size, end, monkeypatch):
    path = tmp_path / "backlog.csv"
    data = messy_bytes(end="\n" if end == "no final newline" else end)
    path.write_bytes(data.rstrip(b"\n") if end == "no final newline" else data)
    monkeypatch.setenv("LAPOR_NLP_ARROW", "1")
    expected = list(iter_rows(path, "csv"))
    blocks = list(csv_blocks(path, size))
    got, by_arrow = [], 0
    for block in blocks:
        rows, table = block.read()
        if table is not None and not block.lines_known:  # rows carry their index until needed
            lines = block.first_lines(table)
            assert (lines is None) == _blank_line(block.read_text())
            if lines is None:
                lines = [r[LINE] for r in block.rows()]
            for r in rows:
                r[LINE] = lines[r[LINE]]
        assert rows == block.rows()  # Arrow's rows, where it read them, are the row reader's
        assert len(rows) == len(block)
        by_arrow += table is not None
        assert (table is not None) <= block.clean
        got += rows
    assert got == expected  # the same rows, line numbers and errors as reading the whole file
    assert [len(b) for b in blocks[:-1]] == [size] * (len(blocks) - 1)
    if size < 20:  # the second half's blocks are Arrow's
        assert by_arrow >= len(blocks) // 3
    # a well-formed, decodable block without blank lines is always Arrow's
    assert by_arrow == sum(b.clean and _decodable(b.read_text()) and not _blank_line(b.read_text()) for b in blocks)


def _decodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _blank_line(text: str) -> bool:
    return any(line in ("\n", "\r\n", "\r") for line in io.StringIO(text, newline="").readlines())


@pytest.mark.parametrize("data", [b"", b"id,text\n", b"id,text", b"id,text\n\n\n"])
def test_no_records_no_blocks(tmp_path, data):
    path = tmp_path / "empty.csv"
    path.write_bytes(data)
    assert list(csv_blocks(path, 5)) == [] and list(iter_rows(path, "csv")) == []


@pytest.mark.parametrize("name,sep", [("export.csv", ";"), ("export.tsv", "\t")])
def test_semicolon_and_tab_files(tmp_path, name, sep):
    path = tmp_path / name
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    w.writerow(["id", "text", "note"])
    for i, text in enumerate(TEXTS * 3):
        w.writerow([i, text.replace(" ", sep, 1), f"{sep}x\ny"])
    path.write_text(buf.getvalue(), encoding="utf-8")
    blocks = list(csv_blocks(path, 4))
    got = []
    for block in blocks:
        rows, table = block.read()
        assert table is not None
        if not block.lines_known:
            lines = block.first_lines(table)
            for r in rows:
                r[LINE] = lines[r[LINE]]
        got += rows
    assert got == list(iter_rows(path, "csv")) and len(got) == 15


def test_a_block_with_undecodable_bytes_is_left_to_the_row_reader(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"id,text\n1,ok\n2,bad \xff byte\n3,ok\n")
    (block,) = csv_blocks(path, 10)
    assert block.clean  # three fields each: only the bytes are wrong
    rows, table = block.read()
    assert table is None and rows == list(iter_rows(path, "csv"))


def test_the_fast_writer_writes_what_csv_writer_writes():
    rng = random.Random(1)
    alphabet = 'ab ,;"\n\r\t\'é€\u2028x\udcff'
    rows = [["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(1, 6))]
            for _ in range(4000)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    assert csv_text(rows) == buf.getvalue()


@pytest.mark.parametrize("n_columns", [1, 2, 9])
def test_the_column_writer_writes_what_csv_writer_writes(n_columns):
    rng = random.Random(n_columns)
    alphabet = 'ab ,;"\n\r\t\'é€\u2028x\udcff'
    plain = "abcdef-.0123"
    # columns with and without a cell to quote, and rows of one empty field
    columns = [[("".join(rng.choice(alphabet if c % 2 else plain) for _ in range(rng.randint(0, 8))))
                for _ in range(3000)] for c in range(n_columns)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(zip(*columns))
    assert csv_columns_text(columns) == buf.getvalue()


@pytest.mark.parametrize("chunk_size", [5, 1000])
def test_classify_with_and_without_arrow_writes_the_same_bytes(model_dir, tmp_path, monkeypatch, chunk_size):
    path = tmp_path / "backlog.csv"
    path.write_bytes(messy_bytes(90, seed=3))
    files = {}
    for arrow in ("0", "1"):
        monkeypatch.setenv("LAPOR_NLP_ARROW", arrow)
        out = tmp_path / f"out{arrow}.csv"
        s = classify_file(path, out, model_dir=model_dir, jobs=1, chunk_size=chunk_size, progress=False)
        assert s.balanced and s.rows_rejected > 0 and s.rows_written > 0
        files[arrow] = (out.read_bytes(), output_paths(out, "csv")[0].read_bytes(), s.rows_rejected,
                        s.rejected_by_reason)
    assert files["1"] == files["0"]
    # jobs=2 (spawned workers read the blocks themselves) writes the same bytes too
    monkeypatch.setenv("LAPOR_NLP_ARROW", "1")
    out = tmp_path / "out2.csv"
    classify_file(path, out, model_dir=model_dir, jobs=2, chunk_size=chunk_size, progress=False)
    assert (out.read_bytes(), output_paths(out, "csv")[0].read_bytes()) == files["0"][:2]


def test_jsonl_output_from_csv_is_the_same_with_arrow(model_dir, tmp_path, monkeypatch):
    path = tmp_path / "backlog.csv"
    path.write_bytes(messy_bytes(40, seed=4))
    got = []
    for arrow in ("0", "1"):
        monkeypatch.setenv("LAPOR_NLP_ARROW", arrow)
        out = tmp_path / f"out{arrow}.jsonl"
        classify_file(path, out, model_dir=model_dir, jobs=1, chunk_size=6, progress=False)
        got.append((out.read_bytes(), output_paths(out, "jsonl")[0].read_bytes()))
    assert got[0] == got[1]
