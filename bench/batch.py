"""Benchmark ``lapor-nlp classify`` end to end (read CSV -> classify -> write CSV).

Builds a 200,000-row backlog in a temporary directory from the Surabaya 2022 complaints in
../shared/data (never copied into the repo): each row recombines sentences of 1-4 real complaints,
with typos injected and numbers changed, so that the stem cache meets new words at a steady rate, as
it does in a real backlog (typos, names, numbers), instead of seeing the same 8,690 texts again.
Then runs the CLI in a fresh process each time, the variants interleaved over ``--runs`` rounds:
``--jobs 1``, ``--jobs 2``, and the releases named by ``--baseline-ref`` (default de15e0d, 0.4.0;
each exported with ``git archive`` and run with PYTHONPATH there, on the same input and model); with
``--variants`` also both read with Arrow (``LAPOR_NLP_ARROW=1``), ``--jobs 1`` without the
common-stems table, and the stem misses with and without that table. It reports medians with ranges of rows/s (wall time of the
whole command, start-up and model load included), the speed-up, the peak RSS of the whole process
tree (sampled every 200 ms with psutil), rows lost (input - output rows - rejected rows, counted in
the files), the differing cells per column against the baseline, the host load, and PASS/FAIL per
target.

    python bench/batch.py [--rows 200000] [--jobs 1 2] [--runs 3] [--model DIR] [--chunk-size 5000]
                          [--home-region "Kota Surabaya"] [--baseline-ref REF ...] [--variants]

Prints figures only, never complaint text.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import REPO, SURABAYA, median, surabaya_rows  # noqa: E402

TARGET_ROWS_S = 15_000
TARGET_SPEEDUP = 1.7
TARGET_RSS_JOBS1 = 450 * 2**20
BASELINE_REF = "de15e0d"  # 0.4.0 as released: the output the new code must reproduce

_SENT = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z]{4,}")
_DIGITS = re.compile(r"\d+")
_TOKEN = re.compile(r"\w+")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:   # swap two letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:   # drop a letter
        return word[:i] + word[i + 1:]
    if kind == 2:   # double a letter ("bangettt")
        return word[:i] + word[i] * 2 + word[i:]
    return word[:i] + rng.choice("aiueo") + word[i + 1:]  # wrong vowel/letter


def build_backlog(path: Path, n_rows: int, *, typo_rate: float = 0.03, seed: int = 0) -> dict:
    src = [r for r in surabaya_rows() if r.get("text", "").strip()]
    rng = random.Random(seed)
    sentences = [_SENT.split(r["text"].strip()) for r in src]

    def vary(text: str) -> str:
        text = _WORD.sub(lambda m: _typo(m.group(), rng) if rng.random() < typo_rate else m.group(), text)
        return _DIGITS.sub(lambda m: str(rng.randrange(10 ** len(m.group()))).zfill(len(m.group()))
                           if rng.random() < 0.5 else m.group(), text)

    seen: set[str] = set()
    new_words_tail = tail_rows = 0
    header = ["id", "date", "text", "address", "district", "subdistrict", "topic", "agency"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n_rows):
            base = rng.randrange(len(src))
            parts = list(sentences[base])
            for _ in range(rng.randrange(0, 3)):  # mix in sentences of other complaints
                other = sentences[rng.randrange(len(src))]
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(other))
            if len(parts) > 1 and rng.random() < 0.3:
                parts.pop(rng.randrange(len(parts)))
            text = vary(" ".join(parts))
            words = {t.lower() for t in _TOKEN.findall(text)}
            new = words - seen
            seen |= new
            if i >= n_rows * 0.9:
                new_words_tail += len(new)
                tail_rows += 1
            r = src[base]
            w.writerow([f"B{i:07d}", r.get("date", ""), text, r.get("address", ""), r.get("district", ""),
                        r.get("subdistrict", ""), r.get("topic", ""), r.get("agency", "")])
    # the same measure on the real data, for comparison
    real_seen: set[str] = set()
    real_new_tail = 0
    for j, r in enumerate(src):
        new = {t.lower() for t in _TOKEN.findall(r["text"])} - real_seen
        real_seen |= new
        if j >= len(src) * 0.9:
            real_new_tail += len(new)
    return {"rows": n_rows, "bytes": path.stat().st_size, "distinct_words": len(seen),
            "new_words_per_row_last_10pct": round(new_words_tail / max(tail_rows, 1), 3),
            "real_data_new_words_per_row_last_10pct": round(real_new_tail / max(len(src) - int(len(src) * 0.9), 1), 3),
            "source_rows": len(src)}


def run_cli(args: list[str], env: dict | None = None) -> dict:
    import psutil

    import resource

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lapor_nlp", "-q", "classify", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=(env or {}).get("PYTHONPATH", REPO),  # `-m` puts the cwd first on sys.path
                            env={**os.environ, **(env or {})})
    root = psutil.Process(proc.pid)
    peak_tree = peak_proc = 0
    procs, rescan = [root], 0.0
    # The sampler must not take CPU from the run it measures (with --jobs 2 both cores are busy):
    # listing the children scans all of /proc (4 ms), so it is done once a second, and the RSS of
    # the processes known is read every 200 ms (under 1% of a core, against 7% for a full scan every
    # 50 ms). Memory grows over seconds, so the peak is still seen.
    while proc.poll() is None:
        now = time.monotonic()
        if now >= rescan:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                pass
            rescan = now + 1.0
        rss = []
        for p in procs:
            try:
                rss.append(p.memory_info().rss)
            except psutil.Error:
                pass
        peak_tree = max(peak_tree, sum(rss))
        peak_proc = max(peak_proc, max(rss, default=0))
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its workers, all waited for
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"classify failed ({proc.returncode}): {err.decode()[-2000:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    return {"wall_s": wall, "rows_per_s": summary["rows_read"] / wall, "peak_rss_tree": peak_tree,
            "cpu_s": cpu, "rows_per_cpu_s": summary["rows_read"] / cpu if cpu else 0.0,
            "load": (load0, os.getloadavg()[0]),
            "peak_rss_process": peak_proc, "summary": summary}


class _NullRouter:
    """Constant predictions: measures everything but the router (read, chunk, format, write, join)."""

    version = "null"

    def predict_records(self, items, **options):
        return [{"topic": {"label": "t", "score": 0.5}, "agency": {"label": "a", "score": 0.5},
                 "routed_to": "a", "needs_review": False, "review_reasons": [], "model_version": "null"}
                for _ in items]


def machinery_ceiling(backlog: Path, out: Path, chunk_size: int, model_dir: str) -> float:
    """rows/s of the batch machinery alone (jobs=1, in this process, the router replaced)."""
    import lapor_nlp.batch as batch
    import lapor_nlp.batch.executors as executors  # where the in-process executor gets its router

    real = executors.get_router
    executors.get_router = lambda model_dir, options=None: _NullRouter()
    try:
        t = time.perf_counter()
        s = batch.classify_file(backlog, out, model_dir=model_dir, jobs=1, chunk_size=chunk_size, progress=False)
        return s.rows_read / (time.perf_counter() - t)
    finally:
        executors.get_router = real



def count_csv_rows(path: Path) -> int:
    """Records in a CSV file after its header (quoted line breaks are not rows)."""
    if not path.exists():
        return 0
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


def differing_cells(new: Path, old: Path) -> tuple[dict, int, int]:
    """Per column, the cells that differ between two outputs of the same input (rows in the same
    order), and the two row counts."""
    diff: dict[str, int] = {}
    with new.open(encoding="utf-8", newline="") as a, old.open(encoding="utf-8", newline="") as b:
        ra, rb = csv.reader(a), csv.reader(b)
        ha, hb = next(ra, []), next(rb, [])
        cols = [c for c in ha if c in hb]
        ia, ib = [ha.index(c) for c in cols], [hb.index(c) for c in cols]
        diff = {c: 0 for c in cols}
        for c in ha:
            if c not in hb:
                diff[f"{c} (only in the new output)"] = -1
        for c in hb:
            if c not in ha:
                diff[f"{c} (only in the baseline)"] = -1
        na = nb = 0
        for x, y in zip(ra, rb):
            na += 1
            nb += 1
            for c, i, j in zip(cols, ia, ib):
                if x[i] != y[j]:
                    diff[c] += 1
        na += sum(1 for _ in ra)
        nb += sum(1 for _ in rb)
    return diff, na, nb


def export_ref(ref: str, dest: Path) -> Path:
    """The tree of commit ``ref`` in ``dest`` (``git archive``: like a ``git worktree`` of it, but
    nothing in this repository is changed, even by an interrupted run)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def compile_bytecode(tree: Path) -> None:
    """Compile the tree's ``lapor_nlp`` to bytecode first, as an installed package has it: where
    PYTHONDONTWRITEBYTECODE is set (as on this project's machines), every fresh process would
    otherwise compile it from source again (0.08 s a process, three of them for ``--jobs 2``),
    which a user's installed copy never does. Done alike for every tree measured."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "lapor_nlp")], check=True,
                   capture_output=True)


def stem_misses(backlog: Path, model: str, home_region: str, table: bool) -> tuple[int, int]:
    """(words PySastrawi stemmed, rows) when the backlog's texts are routed in this process, with
    or without the shipped table of common stems: what a cold run pays ~20 us a word for."""
    env = {**os.environ, "LAPOR_NLP_STEM_COMMON": "1" if table else "0"}
    code = (
        "import csv, sys\n"
        "from lapor_nlp.router import Router\n"
        "r = Router.load(sys.argv[1], **({'home_region': sys.argv[3]} if sys.argv[3] else {}))\n"
        "st = r.model.preprocessor_._stemmer\n"
        "n = [0]\n"
        "real = st._stemmer.stem\n"
        "def counted(w):\n"
        "    n[0] += 1\n"
        "    return real(w)\n"
        "st._stemmer.stem = counted\n"
        "rows = 0\n"
        "with open(sys.argv[2], encoding='utf-8', newline='') as fh:\n"
        "    batch = []\n"
        "    for row in csv.DictReader(fh):\n"
        "        batch.append(row['text']); rows += 1\n"
        "        if len(batch) == 5000:\n"
        "            r.predict_records(batch); batch = []\n"
        "    if batch: r.predict_records(batch)\n"
        "print(n[0], rows)\n")
    out = subprocess.run([sys.executable, "-c", code, model, str(backlog), home_region], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def _range(xs, fmt="{:,.0f}") -> str:
    return f"{fmt.format(median(xs))} (range {fmt.format(min(xs))}-{fmt.format(max(xs))})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--typo-rate", type=float, default=0.03)
    ap.add_argument("--home-region", default="Kota Surabaya",
                    help="passed to classify: the backlog is Surabaya's (default 'Kota Surabaya'; "
                         "'' for none)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each variant, interleaved; medians and ranges are compared (default 3)")
    ap.add_argument("--baseline-ref", nargs="*", default=[BASELINE_REF],
                    help=f"also run classify --jobs 1 of these commits (default {BASELINE_REF}, 0.4.0) on the "
                         "same input and model, and count the differing cells per column; none to skip")
    ap.add_argument("--variants", action="store_true",
                    help="also the --jobs values reading CSV with Arrow (LAPOR_NLP_ARROW=1), --jobs 1 without "
                         "the common-stems table (LAPOR_NLP_STEM_COMMON=0), and the stem misses with and "
                         "without that table")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the machinery-only measurement")
    ap.add_argument("--keep", default=None, help="keep the backlog and outputs in this directory")
    a = ap.parse_args(argv)
    if not SURABAYA.exists():
        print(f"bench/batch.py: {SURABAYA} is absent. It lives beside the checkout (../shared/data), "
              "never in the repo; set LAPOR_SHARED_DATA to its directory.", file=sys.stderr)
        return 2
    try:
        import psutil  # noqa: F401
    except ImportError:
        print("bench/batch.py needs psutil: pip install 'lapor-nlp[bench]'", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    model = a.model
    if model is None:
        from lapor_nlp.training.default import ensure_default_model

        model = str(ensure_default_model())
    verdicts: list[tuple[str, bool | None]] = []
    with tempfile.TemporaryDirectory(prefix="lapor-bench-", dir=a.keep) as tmp:
        tmp = Path(tmp)
        backlog = tmp / "backlog.csv"
        t = time.perf_counter()
        info = build_backlog(backlog, a.rows, typo_rate=a.typo_rate)
        print(f"backlog: {info['rows']:,} rows, {info['bytes'] / 1e6:.1f} MB, built in "
              f"{time.perf_counter() - t:.1f} s; {info['distinct_words']:,} distinct words; new words per "
              f"row over the last 10%: {info['new_words_per_row_last_10pct']} (the real 2022 data over "
              f"its last 10%: {info['real_data_new_words_per_row_last_10pct']})")
        print(f"cpu cores: {os.cpu_count()}  model: {model}  load average: "
              + " ".join(f"{x:.1f}" for x in os.getloadavg()))
        if not a.no_ceiling:
            ceiling = machinery_ceiling(backlog, tmp / "null.csv", a.chunk_size, model)
            print(f"batch machinery alone (read CSV, chunk, format, write, join; router replaced by a "
                  f"constant): {ceiling:,.0f} rows/s")
        region = ["--home-region", a.home_region] if a.home_region else []
        common = ["--model", model, *region, "--chunk-size", str(a.chunk_size)]
        # name -> (classify arguments after the input, environment)
        variants: dict[str, tuple[list[str], dict]] = {
            f"jobs{j}": (["--jobs", str(j)], {}) for j in a.jobs}
        if a.variants:
            variants["jobs1-arrow"] = (["--jobs", "1"], {"LAPOR_NLP_ARROW": "1"})
            if 2 in a.jobs:
                variants["jobs2-arrow"] = (["--jobs", "2"], {"LAPOR_NLP_ARROW": "1"})
            variants["jobs1-no-stem-table"] = (["--jobs", "1"], {"LAPOR_NLP_STEM_COMMON": "0"})
        compile_bytecode(REPO)
        print("bytecode: compiled first in every tree measured, as an installed package has it")
        for ref in a.baseline_ref:
            base = export_ref(ref, tmp / f"baseline-{ref}")
            compile_bytecode(base)
            variants[f"baseline-{ref}"] = (["--jobs", "1"], {"PYTHONPATH": str(base)})
            print(f"baseline: {ref} exported to {base} (git archive), run with PYTHONPATH there")
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for k in range(a.runs):  # interleaved (1, 2, baseline, 1, 2, baseline...): drifts in host load hit all
            for name, (args, env) in variants.items():
                out = tmp / f"out-{name}.csv"
                for stale in (out, tmp / f"out-{name}.rejects.csv"):
                    stale.unlink(missing_ok=True)
                r = run_cli([str(backlog), "-o", str(out), *common, *args], env)
                r["written_rows"] = count_csv_rows(out)
                r["rejected_rows"] = count_csv_rows(tmp / f"out-{name}.rejects.csv")
                runs[name].append(r)
                s = r["summary"]
                print(f"{name} (run {k + 1}): {r['rows_per_s']:,.0f} rows/s end to end ({r['wall_s']:.1f} s wall; "
                      f"{r['written_rows']:,} rows in the output, {r['rejected_rows']:,} in the rejects, "
                      f"{100 * s['review_share']:.1f}% need review); peak RSS {r['peak_rss_tree'] / 2**20:,.0f} MiB "
                      f"(process tree), {r['peak_rss_process'] / 2**20:,.0f} MiB (largest process); "
                      f"{r['cpu_s']:.0f} CPU-s = {r['rows_per_cpu_s']:,.0f} rows per CPU-second; "
                      f"load average {r['load'][0]:.1f} before, {r['load'][1]:.1f} after", flush=True)
        print(f"medians of {a.runs} interleaved run(s), with ranges:")
        rate = {}
        for name, rs in runs.items():
            rate[name] = median([r["rows_per_s"] for r in rs])
            print(f"  {name}: {_range([r['rows_per_s'] for r in rs])} rows/s; peak RSS (tree) "
                  f"{_range([r['peak_rss_tree'] / 2**20 for r in rs])} MiB; load "
                  f"{_range([r['load'][0] for r in rs], '{:.1f}')}")
        lost = {name: a.rows - rs[-1]["written_rows"] - rs[-1]["rejected_rows"] for name, rs in runs.items()
                if not name.startswith("baseline")}
        print("rows lost (input - output rows - rejected rows): " + ", ".join(f"{n}: {v}" for n, v in lost.items()))
        verdicts.append(("0 rows lost", all(v == 0 for v in lost.values())))
        if "jobs1" in rate:
            verdicts.append((f"--jobs 1 >= {TARGET_ROWS_S:,} rows/s", rate["jobs1"] >= TARGET_ROWS_S))
            rss1 = max(r["peak_rss_tree"] for r in runs["jobs1"])
            verdicts.append((f"--jobs 1 peak RSS < {TARGET_RSS_JOBS1 // 2**20} MiB ({rss1 / 2**20:,.0f})",
                             rss1 < TARGET_RSS_JOBS1))
        if "jobs1" in rate and "jobs2" in rate:
            same = (tmp / "out-jobs1.csv").read_bytes() == (tmp / "out-jobs2.csv").read_bytes()
            ratios = [r2["rows_per_s"] / r1["rows_per_s"] for r1, r2 in zip(runs["jobs1"], runs["jobs2"])]
            print(f"speed-up --jobs 2 / --jobs 1 per round: {_range(ratios, '{:.2f}')}x wall-clock; CPU per row "
                  f"--jobs 2 / --jobs 1: {median([r['rows_per_cpu_s'] for r in runs['jobs1']]) / median([r['rows_per_cpu_s'] for r in runs['jobs2']]):.2f} "
                  f"(1.00 = no overhead from parallelism); outputs identical: {same}")
            verdicts.append((f"--jobs 2 >= {TARGET_SPEEDUP}x --jobs 1", median(ratios) >= TARGET_SPEEDUP))
            verdicts.append(("--jobs 2 output == --jobs 1 output", same))
            if (os.cpu_count() or 1) <= 2 or runs["jobs2"][-1]["load"][0] > (os.cpu_count() or 1) * 0.5:
                print("note: wall-clock speed-up needs two otherwise idle cores; this machine has "
                      f"{os.cpu_count()} cores and was loaded (see the load averages above)")
        for name in ("jobs1-arrow", "jobs2-arrow", "jobs1-no-stem-table"):
            plain = name[:5]
            if name in rate and plain in rate:
                same = (tmp / f"out-{name}.csv").read_bytes() == (tmp / f"out-{plain}.csv").read_bytes()
                cpu = median([r["rows_per_cpu_s"] for r in runs[name]]) / median([r["rows_per_cpu_s"] for r in runs[plain]])
                print(f"{name}: {rate[name] / rate[plain]:.2f}x the rate of {plain}, {cpu:.2f}x its rows per "
                      f"CPU-second; outputs identical: {same}")
                verdicts.append((f"{name} output == {plain} output", same))
        if a.variants:
            for table in (True, False):
                n, rows = stem_misses(backlog, model, a.home_region, table)
                print(f"stem misses (words PySastrawi stemmed) {'with' if table else 'without'} the common-stems "
                      f"table: {n:,} over {rows:,} rows ({n / max(rows, 1):.3f} a row)")
        for ref in a.baseline_ref:
            base_name = f"baseline-{ref}"
            if base_name not in runs or "jobs1" not in runs:
                continue
            diff, n_new, n_old = differing_cells(tmp / "out-jobs1.csv", tmp / f"out-{base_name}.csv")
            print(f"output vs {ref} (same input, same model): {n_new:,} rows vs {n_old:,}; differing cells "
                  "per column (-1: a column only one of them has):")
            for c, v in diff.items():
                print(f"  {c}: {v:,}")
            if "jobs1" in rate:
                print(f"speed vs {ref}: {rate['jobs1'] / rate[base_name]:.2f}x (--jobs 1, same run)")
            verdicts.append((f"output identical to {ref}'s", n_new == n_old and not any(diff.values())))
        if not a.no_ceiling and "jobs1" in rate:
            budget = 1e6 / TARGET_ROWS_S - 1e6 / ceiling
            spent = 1e6 / rate["jobs1"] - 1e6 / ceiling
            print(f"--jobs 1 per row: {1e6 / rate['jobs1']:.1f} us = machinery {1e6 / ceiling:.1f} "
                  f"+ classification {spent:.1f} us; {TARGET_ROWS_S:,} rows/s leaves "
                  f"{max(budget, 0):.1f} us a row for classification")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        for what, ok in verdicts:
            print(f"{'PASS' if ok else 'FAIL'}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
