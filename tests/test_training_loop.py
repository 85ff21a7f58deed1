"""The data scientist's loop (issue 17, training side): labels per task, operator figures in
evaluate, compare with its promotion gate, cross-validation, the model card, --help defaults.

Small data from the bundled corpus (a model in a few seconds); the Surabaya figures are in
tests/test_real_data.py and docs/benchmarks.md."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from lapor_nlp.artifact import verify
from lapor_nlp.errors import InputValueError
from lapor_nlp.training import Columns, evaluate, train
from lapor_nlp.training.compare import compare, comparison_markdown
from test_training import tiny_rows, write_csv

HEADER = ("id", "text", "topic", "agency", "date", "regency", "village")
PHONE = "0812-3456-7890"


@pytest.fixture(scope="module")
def loop_data(tmp_path_factory):
    """Eight agencies × 80 corpus rows: a held-out quarter (every text carries a phone number),
    the other three quarters for training, and a quarter of those for a weaker model."""
    d = tmp_path_factory.mktemp("loop")
    rows = tiny_rows((80,) * 8)
    held = [dict(r, text=f"hubungi saya di {PHONE}. {r['text']}") for r in rows[::4]]
    rest = [r for i, r in enumerate(rows) if i % 4]
    return {"dir": d, "held": write_csv(d / "held.csv", held, HEADER),
            "train": write_csv(d / "train.csv", rest, HEADER),
            "quarter": write_csv(d / "quarter.csv", rest[::4], HEADER), "held_rows": held}


@pytest.fixture(scope="module")
def models(loop_data):
    d = loop_data["dir"]
    out = {}
    for name in ("train", "quarter"):
        out[name] = d / f"m_{name}"
        train(loop_data[name], out[name], columns=Columns(id="id", regency="regency", village="village"),
              test_size=0, quiet=True)
    return out


# -- labels per task -------------------------------------------------------------------------------
def test_a_row_missing_one_label_trains_and_tests_the_other_task(tmp_path):
    rows = tiny_rows()
    for i, r in enumerate(rows):
        if i % 7 == 0:
            r["topic"] = ""
        elif i % 9 == 0:
            r["agency"] = ""
    no_topic = sum(not r["topic"] for r in rows)
    no_agency = sum(not r["agency"] for r in rows)
    rows.append(dict(rows[1], id="nothing", topic="", agency=""))  # no task can use it
    path = write_csv(tmp_path / "partial.csv", rows)
    with pytest.raises(Exception, match="1 of .* rows are unusable"):  # only that one stops training
        train(path, None, columns=Columns(id="id"), quiet=True)
    r = train(path, tmp_path / "m", columns=Columns(id="id"), skip_bad=True, quiet=True)
    d = r.info["data"]
    assert d["rows_rejected"] == 1 and d["missing_labels"] == {"topic": no_topic, "agency": no_agency}
    per = d["rows_per_task"]
    # every row with a task's label is trained or tested on for that task (no rare labels here)
    assert per["topic"]["train"] + per["topic"]["test"] + d["rows_dropped"]["test_duplicates_of_train"] \
        >= len(rows) - 1 - no_topic
    assert per["topic"]["train"] + per["agency"]["train"] > d["train_rows"]  # rows carry both or one
    assert per["topic"]["train"] < d["train_rows"] and per["agency"]["train"] < d["train_rows"]
    # the test figures are over the test rows that carry that task's label: one split for both
    assert r.metrics["topic"]["n"] == per["topic"]["test"] and r.metrics["agency"]["n"] == per["agency"]["test"]
    assert r.metrics["agency"]["n_excluded"] + r.metrics["agency"]["n"] == d["test_rows"]
    report = json.loads((tmp_path / "m" / "data_report.json").read_text())
    assert report["rows_per_task"] == per and report["missing_labels"] == d["missing_labels"]
    # the agency head learnt from exactly the training rows with an agency label
    assert sum(r.info["label_counts"]["agency"].values()) == per["agency"]["train"]


# -- evaluate for operators ------------------------------------------------------------------------
def test_evaluate_reports_the_auto_route_share_and_routed_to(models, loop_data):
    from lapor_nlp import Complaint, Router
    from lapor_nlp.schemas import Location

    m = evaluate(models["train"], loop_data["held"],
                 columns=Columns(id="id", regency="regency", village="village"))
    held = loop_data["held_rows"]
    router = Router.load(models["train"])
    preds = router.predict_batch([Complaint(text=r["text"], location=Location(
        regency=r.get("regency") or None, subdistrict=r.get("village") or None)) for r in held])
    auto = np.array([not p.needs_review for p in preds])
    right = np.array([p.agency.label == r["agency"] for p, r in zip(preds, held)])
    a = m["agency"]["auto_route"]
    assert a["share"] == pytest.approx(auto.mean()) and a["precision"] == pytest.approx(right[auto].mean())
    assert 0 < a["share"] < 1 and m["agency"]["above_threshold"]["share"] >= a["share"]
    # corpus labels are types without a place: routed_to is right when the type is
    assert m["agency"]["routed_to"]["n"] == len(held)
    assert m["agency"]["routed_to"]["accuracy"] == pytest.approx(right.mean())
    # without location columns there is no routed_to figure (nothing to check it against)
    m2 = evaluate(models["train"], loop_data["held"], columns=Columns(id="id"))
    assert "routed_to" not in m2["agency"] and "auto_route" in m2["topic"]


# -- compare and its gate --------------------------------------------------------------------------
def test_compare_picks_the_fuller_model_with_an_interval_above_zero(models, loop_data):
    c = compare(models["quarter"], models["train"], loop_data["held"], require_better=True)
    for task in ("topic", "agency"):
        acc = c.tasks[task]["accuracy"]
        assert acc["b"] > acc["a"] and acc["delta_ci"][0] > 0 and acc["verdict"] == "better"
        assert acc["delta_ci"][0] <= acc["delta"] <= acc["delta_ci"][1]
        for name in ("macro_f1", "coverage", "auto_route", "auto_route_precision"):
            assert set(c.tasks[task][name]) >= {"a", "b", "delta", "delta_ci", "a_ci", "b_ci"}
        assert c.per_label[task] and all("delta_ci" in f for f in c.per_label[task].values())
    assert c.verdict == "better" and c.passed
    assert 0 < c.changed_total == len(c.changed_routes)
    # same seed, same intervals
    again = compare(models["quarter"], models["train"], loop_data["held"], require_better=True)
    assert again.to_dict() == c.to_dict()


def test_changed_routes_are_pii_masked(models, loop_data):
    c = compare(models["quarter"], models["train"], loop_data["held"], max_changes=10_000)
    data = json.dumps(c.to_dict(), ensure_ascii=False) + comparison_markdown(c)
    assert c.changed_routes and PHONE not in data and "3456-7890" not in data
    assert all("hubungi saya di" in ch["text"] for ch in c.changed_routes)


def test_identical_models_are_not_better_and_the_gate_fails(models, loop_data, capsys):
    from lapor_nlp.cli import main

    c = compare(models["train"], models["train"], loop_data["held"], require_better=True)
    assert c.verdict == "no_difference" and not c.passed and c.changed_total == 0
    assert all(f["accuracy"]["delta_ci"] == [0.0, 0.0] for f in c.tasks.values())
    # a tolerance alone lets an equal model through (not worse), without calling it better
    assert compare(models["train"], models["train"], loop_data["held"], tolerance=0.01).passed
    # the fuller model as A: the weaker B is refused within a tolerance of one point
    worse = compare(models["train"], models["quarter"], loop_data["held"], tolerance=0.01)
    assert not worse.passed and worse.verdict == "worse"
    assert any("below A" in f for f in worse.gate["failures"])
    # the CLI: exit 1 when the gate fails, 0 when it passes; JSON on stdout
    args = ["-q", "compare", "--data", str(loop_data["held"]), "--n-boot", "200"]
    assert main([*args, "--require-better", str(models["train"]), str(models["train"])]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is False and out["verdict"] == "no_difference"
    md = loop_data["dir"] / "cmp.md"
    assert main([*args, "--require-better", "--markdown", str(md), str(models["quarter"]), str(models["train"])]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "better" and "B − A" in md.read_text()
    with pytest.raises(InputValueError):
        compare(models["train"], models["train"], loop_data["held"], tolerance=2)


# -- bootstrap statistics --------------------------------------------------------------------------
def test_weighted_statistics_equal_scikit_learn_on_each_resample():
    from sklearn.metrics import f1_score

    from lapor_nlp.training.metrics import (
        bootstrap_counts, coverage_at_precision, weighted_coverage, weighted_f1,
    )

    rng = np.random.default_rng(3)
    y = rng.choice(list("abcde"), 300).astype(object)
    p = np.where(rng.random(300) < 0.7, y, rng.choice(list("abcdef"), 300)).astype(object)
    score = rng.random(300)
    W = bootstrap_counts(300, 30, seed=1)
    _, macro = weighted_f1(W, y, p, sorted(set(y)))
    cov = weighted_coverage(W, y == p, score, 0.8)
    for w, m, c in zip(W, macro, cov):
        idx = np.repeat(np.arange(300), w.astype(int))
        assert m == pytest.approx(f1_score(y[idx], p[idx], labels=sorted(set(y[idx])), average="macro"), abs=1e-6)
        assert c == pytest.approx(coverage_at_precision(y[idx] == p[idx], score[idx], 0.8), abs=1e-6)


# -- cross-validation and the model card -----------------------------------------------------------
def test_cv_reports_mean_and_sd_beside_the_split_and_the_card_describes_the_model(tmp_path):
    from lapor_nlp.cli import build_parser

    rows = tiny_rows()
    rows[0]["topic"] = ""
    path = write_csv(tmp_path / "d.csv", rows)
    out = tmp_path / "m"
    r = train(path, out, columns=Columns(id="id", date="date"), cv=3, cv_group="date", quiet=True)
    cv = r.info["cv"]
    for task in ("topic", "agency"):
        acc = cv[task]["accuracy"]
        assert 0 < acc["mean"] <= 1 and acc["sd"] >= 0 and set(cv[task]) >= {"macro_f1", "coverage_at_0.95"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cv"]["k"] == 3 and len(metrics["cv"]["folds"]) == 3 and metrics["cv"]["group"] == "date"
    assert "tasks" in metrics  # the time-split figures stay beside them
    manifest = verify(out)
    assert "MODEL_CARD.md" in manifest["files"]
    card = (out / "MODEL_CARD.md").read_text()
    acc_ci = r.metrics["agency"]["intervals"]["accuracy"]
    assert acc_ci[0] <= r.metrics["agency"]["accuracy"] <= acc_ci[1]
    for fact in (manifest["data"]["sha256"], "2024-01-01 to 2024-02-28", "1 rows with no topic label",
                 f"{r.metrics['agency']['accuracy']:.3f} [{acc_ci[0]:.3f}, {acc_ci[1]:.3f}]",
                 "44% of 174 pairs", "Kelurahan", "3-fold cross-validation (date)", "## Review thresholds",
                 "## Intended use"):
        assert fact in card, fact
    # the retrain command in the card is one the CLI accepts, with this model's options
    cmd = card.split("```bash\n")[1].split("\n```")[0]
    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert (args.date_col, args.id_col, args.cv, args.cv_group) == ("date", "id", 3, "date")
    with pytest.raises(InputValueError):
        train(path, None, cv=1, quiet=True)


def test_help_shows_the_defaults(capsys):
    from lapor_nlp.cli import main

    for verb, expected in (("train", ("--C C", "(default: 0.5)", "(default: 0.2)", "(default: drop)")),
                           ("evaluate", ("(default: text)",)),
                           ("compare", ("(default: 1000)", "(default: accuracy)"))):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for e in expected:
            assert e in text, (verb, e)
        assert "(default: None)" not in text and "(default: False)" not in text


def test_the_card_retrains_with_the_options_that_changed_the_data_and_stderr_says_each_line_once(tmp_path):
    """Review findings: the card's retrain command dropped --corrections (and --out's path), the
    card gave the file's sha256 as if the labels were its own, `train --cv` showed scikit-learn's
    raw UserWarning for a one-row label, and every summary line was on stderr twice."""
    import os
    import subprocess
    import sys

    from lapor_nlp.cli import build_parser

    rows = tiny_rows((12,) * 4)
    rows[0]["topic"] = "langka"  # a label with one training row
    write_csv(tmp_path / "d.csv", rows)
    (tmp_path / "fix.csv").write_text("id,corrected_topic,corrected_agency\nt1,lingkungan,\nt2,,dlh\n"
                                      "nope,sosial,\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "train", "--data", "d.csv", "--out", "models/c",
                        "--id-col", "id", "--min-count", "1", "--rare", "keep", "--test-size", "0.25",
                        "--cv", "2", "--corrections", "fix.csv", "--map-labels", "none", "--skip-bad"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONWARNINGS": "default"})
    assert r.returncode == 0, r.stderr
    assert "UserWarning" not in r.stderr and "site-packages" not in r.stderr
    assert "topic: label 'langka' has only 1 training row" in r.stderr
    summaries = [line for line in r.stderr.splitlines() if "accuracy" in line and "fold" not in line]
    assert len(summaries) == 4 and len(set(s.removeprefix("lapor-nlp: test ") for s in summaries)) == 4, summaries
    card = (tmp_path / "models" / "c" / "MODEL_CARD.md").read_text(encoding="utf-8")
    report = json.loads((tmp_path / "models" / "c" / "data_report.json").read_text())["corrections"]
    changed = report["labels_changed"]
    assert report["rows_changed"] == 2 and report["unmatched_ids"] == 1 and len(report["sha256"]) == 64
    line = next(x for x in card.splitlines() if x.startswith("- corrections:"))
    for fact in (f"{report['rows_changed']} rows", f"topic {changed['topic']}", "`fix.csv`", report["sha256"],
                 "1 named ids not in the data"):
        assert fact in line, (fact, line)
    cmd = card.split("```bash\n")[1].split("\n```")[0]
    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert (args.out, args.corrections, args.map_labels, args.skip_bad, args.cv, args.id_col, args.rare,
            args.min_count, args.test_size) == ("models/c", "fix.csv", "none", True, 2, "id", "keep", 1, 0.25)
