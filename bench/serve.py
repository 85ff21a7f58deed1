"""HTTP service throughput and latency: single predictions against ``lapor-nlp serve`` on loopback.

Starts the server in a subprocess on a free 127.0.0.1 port (``--workers 2`` by default), then for
each client count (1, then 8) sends ``POST /v1/predict`` requests for ``--duration`` seconds over
that many keep-alive connections, after a short warm-up. The load comes from ``wrk`` (a C load
generator; Debian/Ubuntu: ``apt install wrk``) when it is on PATH, as is usual for measuring a
server: a Python client costs more CPU per request than the server itself (httpx: ~1.5 ms), and on
a 2-core machine client and server share the cores. ``--client httpx`` uses one thread and one
``httpx.Client`` per connection instead (the fallback when wrk is missing). Texts are
the Surabaya 2022 complaints (../shared/data, never printed) when present, else the bundled corpus.
Prints requests, requests/s, p50 and p99 latency (client side, whole round trip) and errors; with
``--runs 3`` the median of each figure over three runs. The server is stopped with SIGTERM at the
end (its exit status is reported: graceful shutdown).

    python bench/serve.py [--model DIR] [--duration 10] [--texts 2000] [--workers 2] [--runs 1]
                          [--client auto|wrk|httpx]

Targets: p50 <= 5 ms at 1 client; >= 1,000 requests/s at 8 clients (on a 2-core machine, with
client and server sharing the cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import REPO, SURABAYA, median  # noqa: E402

TARGET_P50_MS = 5.0
TARGET_RPS_8 = 1000.0


def load_texts(n: int) -> tuple[list[str], str]:
    texts: list[str] = []
    if SURABAYA.exists():
        with SURABAYA.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("text"):
                    texts.append(row["text"])
                if len(texts) >= n:
                    break
        return texts, "Surabaya 2022 (../shared/data)"
    for path in sorted((REPO / "datasets" / "corpus").glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    # Interleave the topic files so that any prefix mixes topics.
    texts = texts[::7] + [t for i, t in enumerate(texts) if i % 7]
    return texts[:n], "bundled corpus (datasets/corpus)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, workers: int, log_level: str, log_path: str,
                 extra: list[str]):
    cmd = [sys.executable, "-m", "lapor_nlp", "serve", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", log_level, *extra]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def wait_ready(base: str, proc, workers: int, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    ready = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the server exited with status {proc.returncode} during startup")
        try:
            # a new connection each time, so that each worker gets asked
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                ready += 1
                if ready >= 4 * workers:
                    return
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("bench: the server did not become ready in time")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of ``pid`` and its direct children (the workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    try:
        pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return None
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def prime(base: str, texts: list[str], workers: int) -> float:
    """Send every text once to every worker (batches of 200 on new connections, which the kernel
    spreads over the workers), so that the word caches are warm: the steady state of a server."""
    import httpx

    t0 = time.perf_counter()
    for _ in range(3 * workers):
        with httpx.Client(base_url=base, timeout=60.0) as c:
            for i in range(0, len(texts), 200):
                r = c.post("/v1/predict/batch", json={"items": [{"text": t} for t in texts[i:i + 200]]})
                r.raise_for_status()
    return time.perf_counter() - t0


def scenario(base: str, bodies: list[bytes], clients: int, duration: float, warmup: float,
             server_pid: int | None = None) -> dict:
    import httpx

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    times = {"start": 0.0, "end": 0.0}

    def set_times() -> None:  # run by the barrier before it lets anyone through
        times["start"] = time.perf_counter()
        times["end"] = times["start"] + duration
        times["cpu_server"] = cpu_seconds(server_pid) if server_pid else None
        times["cpu_client"] = time.process_time()

    start_line = threading.Barrier(clients + 1, action=set_times)

    def client(k: int) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=base, timeout=10.0, headers=headers) as c:
            i = k * 997
            start_line.wait()
            warm_end = time.perf_counter() + warmup
            while time.perf_counter() < warm_end:  # connection set up, caches warm
                c.post("/v1/predict", content=bodies[i % len(bodies)])
                i += 1
            start_line.wait()
            lat = latencies[k]
            t_end = times["end"]
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    break
                try:
                    r = c.post("/v1/predict", content=bodies[i % len(bodies)])
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                t1 = time.perf_counter()
                if ok:
                    lat.append(t1 - t0)
                else:
                    errors[k] += 1
                i += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()  # all connected, warm-up begins
    start_line.wait()  # warm-up over, timing begins
    for t in threads:
        t.join()
    elapsed = max(time.perf_counter() - times["start"], 1e-9)
    cpu_client = time.process_time() - times["cpu_client"]
    cpu_srv_end = cpu_seconds(server_pid) if server_pid else None
    cpu_server = (cpu_srv_end - times["cpu_server"]
                  if cpu_srv_end is not None and times["cpu_server"] is not None else float("nan"))
    all_lat = sorted(x for lat in latencies for x in lat)
    n = len(all_lat)

    def pct(q: float) -> float:
        return all_lat[min(n - 1, int(q * n))] * 1000.0 if n else float("nan")

    per_req = 1000.0 / max(n, 1)
    return {"clients": clients, "requests": n, "rps": n / elapsed, "p50": pct(0.50),
            "p99": pct(0.99), "errors": sum(errors), "srv_cpu": cpu_server * per_req,
            "cli_cpu": cpu_client * per_req}


_WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/predict", {["content-type"] = "application/json"},
                    bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "us": %%d, "p50": %%d, "p99": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_script(bodies: list[bytes], path: str) -> None:
    """A wrk Lua script cycling through the request bodies (JSON, ASCII-only: ensure_ascii)."""
    quoted = ",".join('"' + b.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '"'
                      for b in bodies)
    Path(path).write_text(_WRK_SCRIPT % quoted, encoding="ascii")


def wrk_scenario(base: str, script: str, clients: int, duration: float, warmup: float,
                 server_pid: int | None = None) -> dict:
    """One scenario with wrk: ``clients`` connections, one request in flight on each."""
    def run(seconds: float) -> dict:
        cmd = ["wrk", "-t", "1", "-c", str(clients), "-d", f"{max(seconds, 1):.0f}s", "--timeout", "10s",
               "-s", script, base + "/v1/predict"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    run(warmup)
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    r = run(duration)
    cpu1 = cpu_seconds(server_pid) if server_pid else None
    n = r["requests"]
    srv = (cpu1 - cpu0) * 1000.0 / max(n, 1) if cpu0 is not None and cpu1 is not None else float("nan")
    return {"clients": clients, "requests": n, "rps": n / (r["us"] / 1e6), "p50": r["p50"] / 1000.0,
            "p99": r["p99"] / 1000.0, "errors": r["errors"], "srv_cpu": srv, "cli_cpu": float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, metavar="DIR",
                    help="model directory (default: the bundled model, built on first use)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per scenario")
    ap.add_argument("--texts", type=int, default=2000, help="distinct texts to cycle through")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    ap.add_argument("--clients", default="1,8", help="client counts, comma-separated (default 1,8)")
    ap.add_argument("--runs", type=int, default=1, help="runs; figures are medians over them")
    ap.add_argument("--log-level", default="info",
                    help="server log level (default info: the request log is on, to a temp file)")
    ap.add_argument("--no-prime", action="store_true",
                    help="do not send every text once to every worker first (cold word caches)")
    ap.add_argument("--http", default="auto", help="server HTTP parser: auto, h11, httptools")
    ap.add_argument("--loop", default="auto", help="server event loop: auto, asyncio, uvloop")
    ap.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                    help="load generator (default auto: wrk when on PATH, else httpx threads)")
    args = ap.parse_args()
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "httpx"
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not on PATH (apt install wrk), or use --client httpx")

    if args.model is None:
        from lapor_nlp.training.default import ensure_default_model

        args.model = str(ensure_default_model(quiet=True))
    texts, source = load_texts(args.texts)
    if not texts:
        raise SystemExit("bench: no texts found")
    bodies = [json.dumps({"text": t}).encode("ascii") for t in texts]
    counts = [int(x) for x in args.clients.split(",") if x.strip()]
    print(f"texts: {len(texts)} from {source}; server: {args.workers} worker(s) on 127.0.0.1; "
          f"{args.duration:g} s per scenario; {args.runs} run(s); {os.cpu_count()} CPUs; "
          f"--http {args.http} --loop {args.loop}; client: {args.client}",
          file=sys.stderr)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_fd, log_path = tempfile.mkstemp(prefix="lapor-serve-bench-", suffix=".log")
    os.close(log_fd)
    proc, log = start_server(args.model, port, args.workers, args.log_level, log_path,
                             ["--http", args.http, "--loop", args.loop])
    script = None
    if args.client == "wrk":
        script_fd, script = tempfile.mkstemp(prefix="lapor-serve-bench-", suffix=".lua")
        os.close(script_fd)
        wrk_script(bodies, script)
    runs: dict[int, list[dict]] = {c: [] for c in counts}
    try:
        wait_ready(base, proc, args.workers)
        if not args.no_prime:
            took = prime(base, texts, args.workers)
            print(f"primed the word caches of every worker in {took:.1f} s", file=sys.stderr)
        for run in range(args.runs):
            for c in counts:
                if script:
                    r = wrk_scenario(base, script, c, args.duration, args.warmup, proc.pid)
                else:
                    r = scenario(base, bodies, c, args.duration, args.warmup, proc.pid)
                runs[c].append(r)
                print(f"run {run + 1}: {c} client(s): {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                      f"p99 {r['p99']:.2f} ms, {r['errors']} errors", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        os.unlink(log_path)
        if script:
            os.unlink(script)

    print()
    print(f"{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'server CPU ms/req':>17} {'client CPU ms/req':>17}")
    summary = {}
    for c in counts:
        rs = runs[c]
        s = {k: median([r[k] for r in rs])
             for k in ("requests", "rps", "p50", "p99", "errors", "srv_cpu", "cli_cpu")}
        summary[c] = s
        print(f"{c:>7} {s['requests']:>9.0f} {s['rps']:>8.0f} {s['p50']:>7.2f} {s['p99']:>7.2f} "
              f"{s['errors']:>6.0f} {s['srv_cpu']:>17.2f} {s['cli_cpu']:>17.2f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-min load average at the end: {load:.1f} on {os.cpu_count()} CPUs; other processes on "
          "the machine slow every figure but the CPU-per-request ones)")
    print()
    ok = True
    if 1 in summary:
        met = summary[1]["p50"] <= TARGET_P50_MS
        ok &= met
        print(f"target p50 <= {TARGET_P50_MS:g} ms at 1 client: {summary[1]['p50']:.2f} ms -> "
              f"{'met' if met else 'MISSED'}")
    if 8 in summary:
        met = summary[8]["rps"] >= TARGET_RPS_8
        ok &= met
        print(f"target >= {TARGET_RPS_8:,.0f} req/s at 8 clients: {summary[8]['rps']:,.0f} -> "
              f"{'met' if met else 'MISSED'}")
    print(f"server stopped with SIGTERM: exit status {rc}"
          f"{' (graceful)' if rc == 0 else ' (NOT graceful)'}")
    return 0 if ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
