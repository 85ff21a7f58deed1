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

Under load (``--connections 1000``): instead of the scenarios above, that many keep-alive
connections (opened over ``--ramp`` s, loopback only) each send ``POST /v1/predict`` one after
another for ``--duration`` s, as fast as answers come (a 503 is not waited out: the worst case),
from one asyncio process, while a second process probes ``/healthz`` every 50 ms: on a fresh
connection to the main port (as an orchestrator's probe does), on one kept-alive connection, and
on the ``--health-port`` listener (a fresh connection). Prints the accepted (200) and shed (503) counts, accepted
and shed p50/p99, the /healthz max and p99, the server's RSS, and PASS/FAIL against the goal:
/healthz always under 100 ms (main port and --health-port, each), accepted p99 under 1 s, shed answers p99 under 100 ms.
``--partial 300`` then opens 300 connections that each declare a 1 MB body and send half of it,
and prints how much the server's RSS grew and how many were refused at once (503).

    python bench/serve.py --connections 1000 --duration 10 [--workers 1] [--partial 300]
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
#: The goal under load (--connections).
TARGET_HEALTHZ_MAX_MS = 100.0
TARGET_ACCEPTED_P99_MS = 1000.0
TARGET_SHED_P99_MS = 100.0


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


def stop_server(proc, log, log_path: str) -> int:
    """SIGTERM (a graceful shutdown), the server's exit status; its log file removed."""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    log.close()
    os.unlink(log_path)
    return rc


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


# -- under load: --connections N ---------------------------------------------------------------------
def _post(path: str, body: bytes) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), len(body))) + body


async def _answer(reader) -> tuple[int, bool]:
    """(status, whether the server closes the connection) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = 0, False
    for line in head.lower().split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            length = int(line[15:])
        elif line.startswith(b"connection:") and b"close" in line:
            close = True
    if length:
        await reader.readexactly(length)
    return int(head[9:12]), close


async def _hammer(port: int, requests: list[bytes], connections: int, duration: float,
                  ramp: float) -> dict:
    """``connections`` keep-alive connections, each sending its next request as soon as the last
    is answered, for ``duration`` s after all are open; latencies (s) by outcome."""
    import asyncio

    loop = asyncio.get_running_loop()
    out = {"accepted": [], "shed": [], "other": 0, "conn_errors": 0, "unanswered": 0}
    t_start = loop.time() + ramp
    t_end = t_start + duration

    async def connection(k: int) -> None:
        await asyncio.sleep(ramp * k / connections)
        i = k * 7919
        writer = None
        try:
            while loop.time() < t_end:
                if writer is None:
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    except OSError:
                        out["conn_errors"] += 1
                        await asyncio.sleep(0.1)
                        continue
                t0 = loop.time()
                try:
                    writer.write(requests[i % len(requests)])
                    status, close = await _answer(reader)
                except (OSError, asyncio.IncompleteReadError):
                    out["conn_errors"] += 1
                    writer.close()
                    writer = None
                    continue
                i += 1
                if t0 >= t_start:  # measured once every connection is open
                    if status == 200:
                        out["accepted"].append(loop.time() - t0)
                    elif status == 503:
                        out["shed"].append(loop.time() - t0)
                    else:
                        out["other"] += 1
                if close:
                    writer.close()
                    writer = None
        finally:
            if writer is not None:
                writer.close()

    tasks = [asyncio.ensure_future(connection(k)) for k in range(connections)]
    done, pending = await asyncio.wait(tasks, timeout=ramp + duration + 15)
    out["unanswered"] = len(pending)  # still waiting for an answer 15 s after the end
    for t in pending:
        t.cancel()
    return out


def _ask_healthz(s: socket.socket, close: bool) -> bool:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    got = b""
    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got.startswith(b"HTTP/1.1 200")


def _probe_healthz(port: int, health_port: int, every: float, seconds: float, queue) -> None:
    """In its own process (the load generator's event loop must not delay the probes), three
    threads, each every ``every`` s: /healthz on a fresh connection to the main port (as an
    orchestrator probes), on one kept-alive connection opened before the load (the event loop's
    delay, without the wait in the kernel's accept queue), and on a fresh connection to the
    ``--health-port`` listener. Latencies in ms, a failure (5 s) as +inf."""
    end = time.monotonic() + seconds
    results: dict[str, list[float]] = {"fresh": [], "kept": [], "side": []}

    def fresh(p: int, out: list[float]) -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
                    ok = _ask_healthz(s, True)
            except OSError:
                ok = False
            out.append((time.perf_counter() - t0) * 1000.0 if ok else float("inf"))
            time.sleep(max(0.0, every - (time.perf_counter() - t0)))

    def kept(out: list[float]) -> None:
        s = None
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                s = s or socket.create_connection(("127.0.0.1", port), timeout=5)
                ok = _ask_healthz(s, False)
            except OSError:
                ok = False
            if not ok and s is not None:  # closed (idle timeout, error): a new one next round
                s.close()
                s = None
            out.append((time.perf_counter() - t0) * 1000.0 if ok else float("inf"))
            time.sleep(max(0.0, every - (time.perf_counter() - t0)))

    threads = [threading.Thread(target=fresh, args=(port, results["fresh"])),
               threading.Thread(target=kept, args=(results["kept"],)),
               threading.Thread(target=fresh, args=(health_port, results["side"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((results["fresh"], results["kept"], results["side"]))


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its direct children (the workers), in MB."""
    total = 0
    try:
        pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return float("nan")
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def load_scenario(port: int, health_port: int, server_pid: int, bodies: list[bytes],
                  connections: int, duration: float, ramp: float) -> dict:
    import asyncio
    import multiprocessing

    requests = [_post("/v1/predict", b) for b in bodies]
    queue = multiprocessing.get_context("spawn").Queue()
    prober = multiprocessing.get_context("spawn").Process(
        target=_probe_healthz, args=(port, health_port, 0.05, ramp + duration, queue), daemon=True)
    rss0 = rss_mb(server_pid)
    prober.start()
    try:  # the load generator's own cost per request is part of every figure: keep it low
        import uvloop

        out = uvloop.run(_hammer(port, requests, connections, duration, ramp))
    except ImportError:
        out = asyncio.run(_hammer(port, requests, connections, duration, ramp))
    out["healthz"], out["healthz_kept"], out["healthz_port"] = queue.get(timeout=60)
    prober.join(timeout=10)
    out["rss"] = (rss0, rss_mb(server_pid))
    return out


async def _partial_bodies(port: int, n: int, size: int, hold: float, server_pid: int) -> dict:
    """``n`` connections each declaring a ``size``-byte body and sending half of it, held for
    ``hold`` s: the server's RSS growth, and how many were refused at once."""
    import asyncio

    head = (b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size)
    half = b'{"text": "' + b"a" * (size // 2)
    rss0 = rss_mb(server_pid)
    conns = []
    for _ in range(n):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        writer.write(head + half)
        conns.append((reader, writer))
    await asyncio.sleep(hold)
    rss1 = rss_mb(server_pid)
    for reader, writer in conns:
        writer.close()
    refused = _shed_count(port, "buffer")
    return {"opened": len(conns), "refused_503": refused, "rss_before": rss0, "rss_during": rss1}


def _shed_count(port: int, reason: str) -> float:
    """The server's own count of requests shed for ``reason`` (from /metrics)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return sum(x.value for f in text_string_to_metric_families(text) for x in f.samples
               if x.name == "lapor_http_shed_total" and x.labels.get("reason") == reason)


def report_load(r: dict, connections: int, duration: float) -> bool:
    acc, shed, hz = r["accepted"], r["shed"], r["healthz"]
    finite = [x for x in hz if x != float("inf")]
    failed_probes = len(hz) - len(finite)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\n{connections} connections, {duration:g} s measured (POST /v1/predict, loopback):")
    print(f"  accepted (200): {len(acc):>7}  ({len(acc) / duration:,.0f}/s)  "
          f"p50 {_pct(acc, .5) * 1000:.1f} ms  p99 {_pct(acc, .99) * 1000:.1f} ms  "
          f"max {max(acc, default=float('nan')) * 1000:.1f} ms")
    print(f"  shed (503):     {len(shed):>7}  ({len(shed) / duration:,.0f}/s)  "
          f"p50 {_pct(shed, .5) * 1000:.1f} ms  p99 {_pct(shed, .99) * 1000:.1f} ms")
    print(f"  other statuses: {r['other']}, connection errors: {r['conn_errors']}, "
          f"connections still unanswered 15 s after the end: {r['unanswered']}")
    print(f"  /healthz (fresh connection every 50 ms): {len(hz)} probes, {failed_probes} failed, "
          f"p50 {_pct(finite, .5):.1f} ms  p99 {_pct(finite, .99):.1f} ms  "
          f"max {max(hz, default=float('nan')):.1f} ms")
    for what, xs in (("one kept-alive connection", r["healthz_kept"]),
                     ("--health-port, fresh connection", r["healthz_port"])):
        ok = [x for x in xs if x != float("inf")]
        print(f"  /healthz ({what}): {len(xs)} probes, {len(xs) - len(ok)} failed, "
              f"p50 {_pct(ok, .5):.1f} ms  p99 {_pct(ok, .99):.1f} ms  "
              f"max {max(xs, default=float('nan')):.1f} ms")
    print(f"  server RSS: {r['rss'][0]:.0f} MB before, {r['rss'][1]:.0f} MB after")
    print(f"  host load average (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on "
          f"{os.cpu_count()} CPUs (client, prober and server share them)")
    checks = [(f"/healthz on the main port (fresh connections) max < {TARGET_HEALTHZ_MAX_MS:g} ms",
               max(hz, default=float("inf")) < TARGET_HEALTHZ_MAX_MS),
              (f"/healthz on --health-port max < {TARGET_HEALTHZ_MAX_MS:g} ms",
               max(r["healthz_port"], default=float("inf")) < TARGET_HEALTHZ_MAX_MS),
              (f"accepted p99 < {TARGET_ACCEPTED_P99_MS:g} ms",
               bool(acc) and _pct(acc, .99) * 1000 < TARGET_ACCEPTED_P99_MS),
              (f"shed p99 < {TARGET_SHED_P99_MS:g} ms",
               not shed or _pct(shed, .99) * 1000 < TARGET_SHED_P99_MS),
              ("every connection answered", r["unanswered"] == 0)]
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return all(ok for _, ok in checks)


def run_load(args, texts: list[str]) -> int:
    import asyncio

    bodies = [json.dumps({"text": t}).encode("ascii") for t in texts]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_fd, log_path = tempfile.mkstemp(prefix="lapor-serve-bench-", suffix=".log")
    os.close(log_fd)
    health_port = free_port()
    extra = ["--http", args.http, "--loop", args.loop, "--health-port", str(health_port),
             *args.server_args.split()]
    proc, log = start_server(args.model, port, args.workers, args.log_level, log_path, extra)
    ok = True
    try:
        wait_ready(base, proc, args.workers)
        if not args.no_prime:
            prime(base, texts, args.workers)
        r = load_scenario(port, health_port, proc.pid, bodies, args.connections, args.duration,
                          args.ramp)
        ok = report_load(r, args.connections, args.duration)
        if args.partial:
            p = asyncio.run(_partial_bodies(port, args.partial, 1_000_000, 3.0, proc.pid))
            print(f"\n{p['opened']} connections each declaring a 1 MB body and sending half of it: "
                  f"server RSS {p['rss_before']:.0f} -> {p['rss_during']:.0f} MB "
                  f"(+{p['rss_during'] - p['rss_before']:.0f} MB); {p['refused_503']:.0f} refused at "
                  f"once with 503 (the server's lapor_http_shed_total{{reason=\"buffer\"}})")
    finally:
        rc = stop_server(proc, log, log_path)
    print(f"server stopped with SIGTERM: exit status {rc}")
    return 0 if ok and rc == 0 else 1


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
    load = ap.add_argument_group("under load (--connections)")
    load.add_argument("--connections", type=int, default=0, metavar="N",
                      help="run the load scenario with N connections (e.g. 1000) instead")
    load.add_argument("--ramp", type=float, default=2.0, help="seconds over which they open")
    load.add_argument("--partial", type=int, default=0, metavar="N",
                      help="then N connections with half-sent 1 MB bodies: the server's RSS")
    load.add_argument("--server-args", default="", metavar="ARGS",
                      help="more `lapor-nlp serve` options, e.g. '--max-concurrency 16'")
    args = ap.parse_args()
    if args.connections:
        if args.model is None:
            from lapor_nlp.training.default import ensure_default_model

            args.model = str(ensure_default_model(quiet=True))
        texts, source = load_texts(args.texts)
        print(f"texts: {len(texts)} from {source}; server: {args.workers} worker(s) on 127.0.0.1",
              file=sys.stderr)
        return run_load(args, texts)
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
        rc = stop_server(proc, log, log_path)
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
