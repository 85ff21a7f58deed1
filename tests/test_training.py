"""Training: validation of each bad-row kind, splits, determinism, the tamper check, round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lapor_nlp.artifact import load_model, save_model, verify
from lapor_nlp.errors import (
    DataValidationError, ModelIntegrityError, ModelNotFoundError, ModelVersionError,
)
from lapor_nlp.resources import dataset_path
from lapor_nlp.training import Columns, load_labelled, split_examples, train
from lapor_nlp.training.data import handle_rare


def corpus_rows(n=None):
    rows = []
    for p in sorted(dataset_path("corpus").glob("*.jsonl")):
        rows += [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows[:n] if n else rows


def write_csv(path, rows, header=("id", "text", "topic", "agency", "date")):
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])
    return path


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """A labelled CSV from the corpus: every third row of it, dated over two months."""
    rows = corpus_rows()[::3]
    for i, r in enumerate(rows):
        r["date"] = f"2024-{1 + (i % 2):02d}-{1 + (i % 28):02d}"
        r["id"] = f"r{i}"
    return write_csv(tmp_path_factory.mktemp("data") / "small.csv", rows)


def tiny_rows(per_agency=(40,) * 6):
    """``per_agency[i]`` rows of the corpus's i-th most frequent agency, dated over two months:
    a model and its report in a second or two, for tests of what training writes and counts
    rather than of how well it learns."""
    rows = corpus_rows()
    counts = {}
    for r in rows:
        counts[r["agency"]] = counts.get(r["agency"], 0) + 1
    quota = dict(zip(sorted(counts, key=lambda a: (-counts[a], a)), per_agency))
    taken, out = dict.fromkeys(quota, 0), []
    for r in rows:
        if r["agency"] in quota and taken[r["agency"]] < quota[r["agency"]]:
            taken[r["agency"]] += 1
            out.append(r)
    for i, r in enumerate(out):
        r["date"] = f"2024-{1 + (i % 2):02d}-{1 + (i % 28):02d}"
        r["id"] = f"t{i}"
    return out


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data") / "tiny.csv", tiny_rows())


# -- validation -----------------------------------------------------------------------------------
def test_each_bad_row_kind_is_reported_with_its_line(tmp_path):
    good = corpus_rows(4)
    path = tmp_path / "bad.csv"
    with open(path, "wb") as fh:
        fh.write(b"id,text,topic,agency\n")
        fh.write(f'1,"{good[0]["text"]}",{good[0]["topic"]},{good[0]["agency"]}\n'.encode())  # line 2
        fh.write(b'2,,infrastruktur,dinas_pu\n')                                           # 3: no text
        fh.write(b'3,jalan rusak parah,,dinas_pu\n')                                       # 4: no topic
        fh.write(b'4,jalan rusak parah,infrastruktur,\n')                                  # 5: no agency
        fh.write(b'1,air mati tiga hari,energi,pdam\n')                                    # 6: dup id
        fh.write(b'5,air \xff\xfe mati,energi,pdam\n')                                     # 7: bad bytes
        fh.write(b'6,too,many,fields,here\n')                                              # 8: malformed
        fh.write(b'7,"lampu jalan mati",perhubungan,dishub\n')                              # 9: good
        fh.write(b'8,"got nothing to say",,\n')                                          # 10: no label
    with pytest.raises(DataValidationError) as info:
        load_labelled(path, Columns(id="id"))
    assert "5 of 9 rows are unusable" in str(info.value)
    problems = {p.line: p.reason for p in info.value.problems}
    assert problems == {
        3: "no text", 6: "duplicate id '1'", 7: "undecodable bytes (not UTF-8)",
        8: "malformed CSV: 5 fields, header has 4", 10: "missing topic and agency labels",
    }
    examples, report = load_labelled(path, Columns(id="id"), skip_bad=True)
    # a row missing one task's label is kept for the other task, and counted
    assert [e.line for e in examples] == [2, 4, 5, 9]
    assert (examples[1].topic, examples[1].agency) == (None, "dinas_pu")
    assert (examples[2].topic, examples[2].agency) == ("infrastruktur", None)
    assert report.missing_labels == {"topic": 1, "agency": 1}
    assert report.rows_read == 9 == report.rows_used + report.rows_rejected
    # with only one task in use, a row missing that task's label is the problem
    _, report = load_labelled(path, Columns(id="id", topic=None), skip_bad=True)
    assert {p.line: p.reason for p in report.problems}[5] == "missing agency label"


def test_unknown_home_region_stops_training_before_any_work(small_csv, tmp_path):
    from lapor_nlp.errors import InputValueError

    with pytest.raises(InputValueError, match="Atlantis"):
        train(small_csv, tmp_path / "m", home_region="Kota Atlantis", quiet=True)
    assert not (tmp_path / "m").exists()


def test_missing_column_is_a_clear_error(small_csv):
    with pytest.raises(DataValidationError, match="'label' not found"):
        load_labelled(small_csv, Columns(topic="label"))


def test_a_label_column_may_be_absent(small_csv):
    examples, _ = load_labelled(small_csv, Columns(topic=None))
    assert all(e.topic is None and e.agency for e in examples)


def test_agency_labels_split_into_type_and_place(tmp_path):
    path = write_csv(tmp_path / "kel.csv", [
        {"text": "surat domisili lama", "topic": "t", "agency": "Kelurahan Kertajaya"},
        {"text": "pelayanan camat", "topic": "t", "agency": "Kecamatan Gubeng"},
        {"text": "bansos", "topic": "t", "agency": "Dinas Sosial Kabupaten Sleman"},
        {"text": "bansos", "topic": "t", "agency": "Dinas Sosial"},
    ], header=("text", "topic", "agency"))
    ex, _ = load_labelled(path)
    assert [(e.agency, e.agency_place) for e in ex] == [
        ("Kelurahan", "Kertajaya"), ("Kecamatan", "Gubeng"), ("Dinas Sosial", "Kabupaten Sleman"),
        ("Dinas Sosial", None)]


def test_rare_labels_drop_or_merge(small_csv):
    ex, _ = load_labelled(small_csv, Columns(id="id"))
    counts = {}
    for e in ex:
        counts[e.agency] = counts.get(e.agency, 0) + 1
    rare_label = min(counts, key=counts.get)
    merged, rare = handle_rare([*ex], "agency", counts[rare_label] + 1, "merge")
    assert rare_label in rare and all(e.agency != rare_label for e in merged)
    ex, _ = load_labelled(small_csv, Columns(id="id"))
    dropped, _ = handle_rare(ex, "agency", counts[rare_label] + 1, "drop")
    assert len(dropped) == len(ex) and any(e.agency is None for e in dropped)


def test_splits_never_share_a_text(small_csv):
    ex, _ = load_labelled(small_csv, Columns(id="id", date="date"))
    ex.append(type(ex[0])(line=9999, text=ex[0].text, topic=ex[0].topic, agency=ex[0].agency,
                          date="2024-02-27", id="dup"))
    for kw in ({"split_date": "2024-02-01"}, {"test_size": 0.3}):
        tr, te = split_examples(ex, **kw)
        assert not ({e.text for e in tr} & {e.text for e in te})
        assert len({e.text for e in te}) == len(te)
    tr, te = split_examples(ex, split_date="2024-02-01")
    assert max(e.date for e in tr) < "2024-02-01" <= min(e.date for e in te)


# -- training, determinism, persistence ------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(small_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "model"
    return train(small_csv, out, columns=Columns(id="id"), test_size=0.25, quiet=True)


def test_model_directory_has_model_manifest_and_report(trained):
    names = {p.name for p in trained.out_dir.iterdir()}
    assert {"manifest.json", "model.json", "model.npz", "stem_cache.json", "metrics.json",
            "errors.md", "routing.json", "confusion_matrix_agency.png", "calibration_agency.png"} <= names
    manifest = json.loads((trained.out_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["data"]["rows_read"] == manifest["data"]["rows_used"] + manifest["data"]["rows_rejected"]
    assert manifest["metrics"]["agency"]["accuracy"] > 0.5
    for key in ("lapor_nlp_version", "sklearn_version", "label_counts", "params", "created"):
        assert key in manifest
    errors_md = (trained.out_dir / "errors.md").read_text()
    assert "## agency" in errors_md and "| label | precision |" in errors_md


def test_same_seed_same_model(small_csv, trained, tmp_path):
    again = train(small_csv, tmp_path / "again", columns=Columns(id="id"), test_size=0.25, quiet=True)
    a = json.loads((trained.out_dir / "manifest.json").read_text())["files"]
    b = json.loads((again.out_dir / "manifest.json").read_text())["files"]
    assert a["model.npz"] == b["model.npz"] and a["model.json"] == b["model.json"]


def test_round_trip_gives_identical_predictions(trained):
    texts = [r["text"] for r in corpus_rows()[1::7][:200]]
    loaded, _ = load_model(trained.out_dir)
    for task in ("topic", "agency"):
        assert np.array_equal(trained.model.predict(texts, task), loaded.predict(texts, task))
        np.testing.assert_allclose(trained.model.predict_proba(texts, task),
                                   loaded.predict_proba(texts, task), rtol=1e-6, atol=1e-9)


def test_tampered_or_incompatible_models_are_refused(trained, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained.out_dir, bad)
    with open(bad / "model.npz", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match="model.npz does not match"):
        load_model(bad)
    shutil.rmtree(bad)
    shutil.copytree(trained.out_dir, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["format_version"] = 99
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelVersionError):
        verify(bad)
    m["format_version"] = 1
    m["files"]["../../etc/passwd"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelIntegrityError, match="outside"):
        verify(bad)
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "nowhere")
    # a file that is a link (DVC caches, Kubernetes volumes): what it points to is hash-checked
    shutil.rmtree(bad)
    shutil.copytree(trained.out_dir, bad)
    outside = tmp_path / "routing-elsewhere.json"
    shutil.copy(bad / "routing.json", outside)
    (bad / "routing.json").unlink()
    (bad / "routing.json").symlink_to(outside)
    load_model(bad)
    outside.write_text(outside.read_text() + " ")
    with pytest.raises(ModelIntegrityError, match="routing.json does not match"):
        load_model(bad)


def test_evaluate_refuses_to_write_its_report_into_the_model(trained, small_csv):
    from lapor_nlp.errors import InputValueError
    from lapor_nlp.training import evaluate

    for report in (trained.out_dir, trained.out_dir / "report"):
        with pytest.raises(InputValueError, match="model directory"):
            evaluate(trained.out_dir, small_csv, report_dir=report)
    verify(trained.out_dir)  # untouched


@pytest.mark.parametrize("kwargs, error, match", [
    ({"test_size": 1.5}, "InputValueError", "test_size"),
    ({"test_size": -0.2}, "InputValueError", "test_size"),
    ({"split_date": "2024-13-45"}, "InputValueError", "split_date"),
    ({"split_date": "2000-01-01"}, "DataValidationError", "training side is empty"),
    ({"columns": Columns(id="id", topic=None, agency=None)}, "InputValueError", "nothing to train"),
    ({"columns": Columns(id="id", date="tanggal"), "split_date": "2024-02-01"}, "DataValidationError",
     "'tanggal' not found"),
    ({"C": -1}, "InputValueError", "C must be a number > 0"),
    ({"target_precision": 1.5}, "InputValueError", r"target_precision must be in \(0, 1\]"),
    ({"min_df": 100000}, "DataValidationError", "no term occurs in min_df=100000"),
    ({"min_count": 10**6}, "DataValidationError", "training side is empty.*fewer than --min-count"),
])
def test_impossible_training_requests_are_clear_errors(small_csv, tmp_path, kwargs, error, match):
    import lapor_nlp.errors as errors

    kwargs = {"columns": Columns(id="id", date="date"), **kwargs}
    with pytest.raises(getattr(errors, error), match=match):
        train(small_csv, tmp_path / "m", quiet=True, **kwargs)
    assert not (tmp_path / "m").exists()


def test_split_dates_must_be_iso_dates(tmp_path):
    rows = corpus_rows()[:40]
    for i, r in enumerate(rows):
        r["date"] = f"{1 + i % 28:02d}/0{1 + i % 2}/2024"  # DD/MM/YYYY: compared as text, meaningless
    path = write_csv(tmp_path / "dmy.csv", rows)
    with pytest.raises(DataValidationError, match="YYYY-MM-DD.*line 2"):
        train(path, None, columns=Columns(date="date"), split_date="2024-02-01", quiet=True)


def test_every_usable_row_is_trained_tested_or_counted_as_dropped(tiny_csv, tmp_path):
    import csv

    with open(tiny_csv, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows += [dict(rows[0], id="copy1"), dict(rows[1], id="copy2", date="2024-02-28")]  # test copies
    path = write_csv(tmp_path / "copies.csv", rows)
    r = train(path, None, columns=Columns(id="id", date="date"), split_date="2024-02-01", quiet=True)
    d = r.info["data"]
    assert d["rows_used"] == d["train_rows"] + d["test_rows"] + sum(d["rows_dropped"].values())
    assert d["rows_dropped"]["test_duplicates_of_train"] >= 1


def test_one_label_is_a_clear_error(tmp_path):
    rows = [dict(r, agency="dinas_pu") for r in corpus_rows(40)]
    path = write_csv(tmp_path / "one.csv", rows)
    with pytest.raises(DataValidationError, match="agency: a classifier needs at least two labels.*dinas_pu"):
        train(path, None, columns=Columns(topic=None), quiet=True)


def test_rows_whose_every_label_is_rare_are_counted_as_dropped(tmp_path):
    """With one task and rare labels dropped, their rows are neither trained nor tested on: they
    are counted under rows_dropped, and rows_per_task says what each task learnt from."""
    rows = tiny_rows()
    # and eight rows each of four more agencies (rare), on topics that are common in the rest
    common, rare = {r["agency"] for r in rows}, {}
    for r in corpus_rows():
        if r["agency"] not in common and r["topic"] in ("infrastruktur", "sosial", "lingkungan"):
            group = rare.setdefault(r["agency"], []) if len(rare) < 4 else rare.get(r["agency"], [])
            if len(group) < 8:
                group.append(dict(r, id=f"rare-{r['agency']}-{len(group)}"))
    data = write_csv(tmp_path / "rare.csv", rows + [r for group in rare.values() for r in group])
    r = train(data, None, columns=Columns(id="id", topic=None), min_count=20, quiet=True)
    d = r.info["data"]
    rare_rows = sum(d["rare_labels"]["agency"]["labels"].values())
    assert rare_rows > 0 and d["rows_dropped"]["rare_labels"] == rare_rows
    assert d["rows_used"] == d["train_rows"] + d["test_rows"] + sum(d["rows_dropped"].values())
    assert d["rows_per_task"]["agency"] == {"train": d["train_rows"], "test": d["test_rows"]}
    # two tasks: a row with one rare label still trains the other task; a row is dropped only
    # when both are rare, so every training row carries at least one task's label
    r = train(data, None, columns=Columns(id="id"), min_count=20, quiet=True)
    d = r.info["data"]
    per = d["rows_per_task"]
    assert d["rows_used"] == d["train_rows"] + d["test_rows"] + sum(d["rows_dropped"].values())
    assert per["agency"]["train"] < d["train_rows"] and per["topic"]["train"] <= d["train_rows"]
    assert per["topic"]["train"] + per["agency"]["train"] >= d["train_rows"]


def test_retraining_into_a_model_directory_leaves_no_old_report(tiny_csv, tmp_path):
    out = tmp_path / "m"
    train(tiny_csv, out, columns=Columns(id="id", date="date"), quiet=True)
    assert (out / "metrics.json").exists()
    (out / "NOTES.txt").write_text("the user's own file", encoding="utf-8")
    # the same directory, now with an empty test side: no metrics, so no report at all
    train(tiny_csv, out, columns=Columns(id="id", date="date"), split_date="2030-01-01", quiet=True)
    files = set(verify(out)["files"])
    assert not (out / "metrics.json").exists() and not any(out.glob("*.png"))
    assert files == {"model.json", "model.npz", "stem_cache.json", "routing.json", "data_report.json",
                     "MODEL_CARD.md"}
    assert (out / "NOTES.txt").exists()  # not the model's: neither removed nor hashed
    # a 0.3.0 manifest listed every file in the directory, the user's too: those stay
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].update({"NOTES.txt": "x", "train.csv": "x", "": "x", "..": "x"})
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (out / "train.csv").write_text("id,text\n", encoding="utf-8")
    train(tiny_csv, out, columns=Columns(id="id", date="date"), quiet=True)
    assert (out / "NOTES.txt").exists() and (out / "train.csv").exists()
    assert (out / "metrics.json").exists() and "NOTES.txt" not in verify(out)["files"]


def test_label_spellings_that_differ_only_by_case_are_reported(tiny_csv, tmp_path, caplog):
    import csv
    import logging

    with open(tiny_csv, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows[:10]:
        r["agency"] = r["agency"].upper()
    path = write_csv(tmp_path / "variants.csv", rows)
    with caplog.at_level(logging.WARNING, logger="lapor_nlp"):
        r = train(path, None, columns=Columns(id="id"), quiet=True)
    assert r.data_report.label_variants["agency"]
    assert any("differ only by case or spacing" in m for m in caplog.messages)


def test_jsonl_exports_bom_and_misspelt_optional_keys(tmp_path):
    rows = corpus_rows(30)
    lines = [json.dumps({"id": f"j{i}", "text": r["text"], "topic": r["topic"], "agency": r["agency"]})
             for i, r in enumerate(rows)]
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8") + b"\n")
    ex, report = load_labelled(path, Columns(id="id"))
    assert report.rows_rejected == 0 and len(ex) == 30 and ex[0].id == "j0"
    with pytest.raises(DataValidationError, match="no line has the key.*'ID'"):
        load_labelled(path, Columns(id="ID"))


def test_rows_without_a_date_are_named_for_split_date(small_csv, tmp_path):
    import csv

    with open(small_csv, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[4]["date"] = ""
    path = write_csv(tmp_path / "gap.csv", rows)
    with pytest.raises(DataValidationError, match="1 row.* have none, the first at line 6"):
        train(path, None, columns=Columns(id="id", date="date"), split_date="2024-02-01", quiet=True)


def test_semicolon_separated_exports_are_read(small_csv, tmp_path):
    import csv

    with open(small_csv, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    path = tmp_path / "excel.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\r\n").writerows(rows)
    ex, report = load_labelled(path, Columns(id="id"))
    ref, _ = load_labelled(small_csv, Columns(id="id"))
    assert [(e.id, e.text, e.agency) for e in ex] == [(e.id, e.text, e.agency) for e in ref]


def test_save_refuses_an_unfitted_model(tmp_path):
    from lapor_nlp.classifier import ComplaintClassifier
    from lapor_nlp.errors import NotFittedError

    with pytest.raises(NotFittedError):
        save_model(ComplaintClassifier(), tmp_path / "x")


def test_review_thresholds_reach_their_precision_out_of_fold(trained):
    head = trained.model.heads_["agency"]
    for c, t in enumerate(head.thresholds_):
        m = (head.oof_pred_ == c) & (head.oof_score_ >= t)
        if m.sum() >= 5:
            assert (head.oof_true_[m] == c).mean() >= 0.95


def test_evaluate_cli_writes_the_same_report(trained, small_csv, tmp_path):
    from lapor_nlp.cli import main

    rc = main(["-q", "evaluate", "--model", str(trained.out_dir), "--data", str(small_csv),
               "--id-col", "id", "--report", str(tmp_path / "rep")])
    assert rc == 0
    assert {"metrics.json", "errors.md"} <= {p.name for p in (tmp_path / "rep").iterdir()}


def test_train_cli_reports_bad_rows_and_exits_1(tmp_path, capsys):
    from lapor_nlp.cli import main

    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "jalan rusak", "topic": "infrastruktur", "agency": "dinas_pu"}\n'
                    '{"text": "", "topic": "infrastruktur", "agency": "dinas_pu"}\nnot json\n')
    assert main(["-q", "train", "--data", str(path), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "line 2: no text" in err and "line 3: malformed JSON" in err and "LAPOR-E010" in err


def test_evaluate_uses_the_models_columns_only_where_the_file_has_them(tiny_csv, tmp_path):
    """A model trained with date and id columns evaluates a file that has neither (the columns came
    from the model, not from the caller); columns the caller names must exist."""
    from lapor_nlp.training import evaluate

    model = train(tiny_csv, tmp_path / "m", columns=Columns(id="id", date="date"),
                  split_date="2024-02-01", quiet=True)
    rows = tiny_rows()[1::4][:60]
    plain = write_csv(tmp_path / "plain.csv", rows, header=("text", "topic", "agency"))
    assert evaluate(model.out_dir, plain)["agency"]["n"] > 0
    with pytest.raises(DataValidationError, match="'date'"):
        evaluate(model.out_dir, plain, columns=Columns(date="date"))


def test_unnamed_header_cells_are_not_duplicates(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("text,topic,agency,,\njalan rusak parah,infrastruktur,dinas_pu,,\n", encoding="utf-8")
    examples, report = load_labelled(path, Columns())
    assert report.rows_read == 1 and len(examples) == 1


# -- labels named before the 2024 reorganisation ------------------------------------------------
OLD_NAMES = {"imigrasi": "Kemenkumham", "pemasyarakatan": "Kemenkumham", "djki": "Kemenkumham",
             "ditjen_ahu": "Kemenkumham", "komdigi": "Kementerian Komunikasi dan Informatika",
             "kemen_pu": "Kementerian PUPR", "kemenpkp": "Kementerian PUPR",
             "dinsos": "Dinas Sosial", "dlh": "dlh"}
#: Written for this test (not in the corpus the resolver learnt from): Kemenkumham's duties.
FRESH_KEMENKUMHAM = [
    ("perpanjang paspor anak saya ditolak petugas kanim karena akta kelahiran beda nama", "imigrasi"),
    ("WNA di villa sebelah rumah kami sudah overstay visa setahun lebih, mohon dicek", "imigrasi"),
    ("antrean M-Paspor penuh terus sampai bulan depan, tidak ada kuota sama sekali", "imigrasi"),
    ("keluarga napi dimintai uang supaya bisa besuk di lapas, katanya biaya kamar", "pemasyarakatan"),
    ("remisi suami saya belum keluar padahal sudah memenuhi syarat, warga binaan rutan", "pemasyarakatan"),
    ("merek dagang keripik saya didaftarkan orang lain duluan, permohonan merek saya ditolak", "djki"),
    ("pendaftaran hak cipta lagu lewat aplikasi e-hakcipta gagal terus saat unggah berkas", "djki"),
    ("pengesahan badan hukum yayasan di AHU online belum terbit sudah dua bulan", "ditjen_ahu"),
]


@pytest.fixture(scope="module")
def old_label_export(tmp_path_factory):
    """An export whose agency column uses pre-2024 names, beside current names and codes."""
    rows, truth = [], {}
    per_type = {}
    for r in corpus_rows():
        if r["agency"] in OLD_NAMES and per_type.get(r["agency"], 0) < 30:
            per_type[r["agency"]] = per_type.get(r["agency"], 0) + 1
            rows.append({"id": f"o{len(rows)}", "text": r["text"], "topic": r["topic"],
                         "agency": OLD_NAMES[r["agency"]]})
    for text, code in FRESH_KEMENKUMHAM:
        truth[f"f{len(truth)}"] = code
        rows.append({"id": f"f{len(truth) - 1}", "text": text, "topic": "politik_hukum", "agency": "Kemenkumham"})
    # one row whose text says nothing about which successor it belongs to
    rows.append({"id": "vague", "text": "mohon tindak lanjut laporan saya yang kemarin, terima kasih",
                 "topic": "lainnya", "agency": "Kemenkumham"})
    path = write_csv(tmp_path_factory.mktemp("old") / "export.csv", rows, header=("id", "text", "topic", "agency"))
    return path, truth, len(rows)


def test_old_agency_names_are_mapped_to_current_codes(old_label_export, router, tmp_path):
    path, truth, n = old_label_export
    res = train(path, tmp_path / "m", columns=Columns(id="id"), min_count=2, rare="keep",
                relabel_with=router, quiet=True)
    m = res.data_report.label_mapping
    assert m["applied"] and "Kemenkumham" in m["old_labels"] and "dlh" not in m["old_labels"]
    assert m["mapped"]["Kementerian Komunikasi dan Informatika"] == {"komdigi": 30}
    assert m["mapped"]["Dinas Sosial"] == {"dinsos": 30}  # current names join the same codes
    assert m["mapped"]["dlh"] == {"dlh": 30}              # a code stays itself
    assert sorted(m["mapped"]["Kemenkumham"]) == ["ditjen_ahu", "djki", "imigrasi", "pemasyarakatan"]
    assert sorted(m["mapped"]["Kementerian PUPR"]) == ["kemen_pu", "kemenpkp"]
    # resolved from the text: complaints the resolver never saw go where they belong
    ex, _ = load_labelled(path, Columns(id="id"))
    from lapor_nlp.training.relabel import map_old_labels, model_resolver

    mapped, report = map_old_labels(ex, "auto", resolver=model_resolver(router))
    fresh = {e.id: e.agency for e in mapped if e.id in truth}
    assert sum(fresh.get(i) == code for i, code in truth.items()) >= 7, fresh
    assert all(getattr(e, "label_from_text", False) for e in mapped if e.id in fresh and fresh[e.id])
    # the vague row is reported with its line, not silently dropped, and still counted
    amb = m["ambiguous"]["Kemenkumham"]
    assert n + 1 in amb["lines"] and amb["rows"] == len(amb["lines"]) <= 5
    d = res.info["data"]
    assert d["rows_used"] == n and d["rows_used"] == d["train_rows"] + d["test_rows"] + sum(d["rows_dropped"].values())
    # rows labelled by the resolver are never test rows: they would grade the resolver
    assert d["rows_dropped"]["test_labels_from_text"] >= 1
    assert not {"Kemenkumham", "Kementerian PUPR", "Dinas Sosial"} & set(res.model.heads_["agency"].classes_)
    saved = json.loads((tmp_path / "m" / "data_report.json").read_text())["label_mapping"]
    assert saved["mapped"] == m["mapped"]
    routing = json.loads((tmp_path / "m" / "routing.json").read_text())
    assert routing["agency_types"]["imigrasi"]["parent"] == "kemenimipas"


def test_label_mapping_can_be_switched_off(old_label_export, tmp_path):
    from lapor_nlp.errors import InputValueError

    path, _, _ = old_label_export
    res = train(path, tmp_path / "m", columns=Columns(id="id"), min_count=2, rare="keep",
                map_labels="none", quiet=True)
    assert not res.data_report.label_mapping["applied"]
    assert {"Kemenkumham", "Kementerian PUPR"} <= set(res.model.heads_["agency"].classes_)
    with pytest.raises(InputValueError, match="map_labels"):
        train(path, None, columns=Columns(id="id"), map_labels="sometimes")


def test_exports_without_old_names_keep_their_labels(tmp_path):
    """auto maps nothing when no label is an old name, though labels name current bodies."""
    rows = [r for r in corpus_rows() if r["agency"] in ("kemenag", "dinsos")][:80]
    for r in rows:
        r["agency"] = {"kemenag": "Kementerian Agama", "dinsos": "Dinas Sosial"}[r["agency"]]
    path = write_csv(tmp_path / "current.csv", rows, header=("text", "topic", "agency"))
    res = train(path, None, min_count=2, rare="keep", test_size=0, quiet=True)
    assert not res.data_report.label_mapping["applied"]
    assert set(res.model.heads_["agency"].classes_) == {"Kementerian Agama", "Dinas Sosial"}
