"""The service under load and under slow clients (issue 18), end to end: `lapor-nlp serve` in a
subprocess on a free loopback port with small limits, called with httpx and raw sockets.

What is asserted is behaviour (who gets 503, 408, a closed connection), never a speed: the
figures under 1,000 connections are bench/serve.py's (--connections 1000)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
prometheus_parser = pytest.importorskip("prometheus_client.parser")

from test_serve import MARKER, OBVIOUS, Server, free_port  # noqa: E402

#: Small limits, so that a test can reach each of them.
MAX_BODY = 1_000_000
MAX_BUFFERED = 2_500_000  # two declared 1 MB bodies fit, a third does not
TIMEOUT = 1.0  # header, body and keep-alive timeouts (s)


HEALTH_PORT = free_port()


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    yield from Server.running(
        ["--model", str(model_dir), "--health-port", str(HEALTH_PORT), "--max-batch", "256",
         "--max-concurrency", "1", "--queue-timeout", "60", "--max-body-bytes", str(MAX_BODY),
         "--max-buffered-bytes", str(MAX_BUFFERED), "--header-timeout", str(TIMEOUT),
         "--body-timeout", str(TIMEOUT), "--keep-alive-timeout", str(TIMEOUT),
         "--log-format", "json", "--log-level", "info"],
        tmp_path_factory.mktemp("serve-load") / "server.log")


def raw(server, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    if data:
        s.sendall(data)
    return s


def closed_within(s: socket.socket, seconds: float, trickle: bytes = b"",
                  every: float = 0.25) -> tuple[bool, bytes]:
    """(whether the server closed ``s`` within ``seconds``, what it sent meanwhile), sending
    ``trickle`` every ``every`` s (a slowloris client)."""
    s.settimeout(every)
    got = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
            if not chunk:
                return True, got
            got += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            return True, got
        if trickle:
            try:
                s.sendall(trickle)
            except OSError:
                return True, got
    return False, got


def post_head(path: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response[9:12])


def _slow_batch(n: int = 256, words: int = 200, seed: int = 0) -> list[dict]:
    """A batch that keeps the one prediction slot busy for a while: long texts of words the
    model's caches have not seen."""
    rng = random.Random(seed)
    syl = ["ba", "ka", "ra", "ti", "lu", "mo", "se", "nga", "pu", "di", "wa", "jo"]
    return [{"text": "jalan rusak " + " ".join("".join(rng.choices(syl, k=4)) for _ in range(words))}
            for _ in range(n)]


def _work_in_flight(client) -> float:
    for family in prometheus_parser.text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "lapor_work_requests_in_flight":
            return family.samples[0].value
    raise AssertionError("no lapor_work_requests_in_flight in /metrics")


@pytest.fixture(scope="module")
def h11_server(model_dir, tmp_path_factory):
    """The same limits on uvicorn's h11 protocol: no fast path, so the gate does the shedding."""
    yield from Server.running(
        ["--model", str(model_dir), "--max-batch", "256", "--max-concurrency", "1",
         "--queue-timeout", "60", "--http", "h11", "--log-level", "warning"],
        tmp_path_factory.mktemp("serve-h11") / "server.log")


# -- load shedding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["server", "h11_server"])
def test_a_full_server_sheds_with_retry_after_and_still_answers_healthz(which, request):
    """Before issue 18 every request queued (p99 14 s at 1,000 connections) and /healthz timed
    out behind them; now, with the one slot taken, a work request gets 503 + Retry-After at
    once and /healthz its 200 (httptools: answered by the protocol's fast path; h11: by the
    gate)."""
    server = request.getfixturevalue(which)
    for attempt in range(3):
        done = threading.Event()
        result = {}

        def hold_the_slot():
            with httpx.Client(base_url=server.base, timeout=120) as c:
                result["batch"] = c.post("/v1/predict/batch",
                                         json={"items": _slow_batch(seed=attempt)}).status_code
            done.set()

        t = threading.Thread(target=hold_the_slot, daemon=True)
        t.start()
        shed, probes = [], []
        with httpx.Client(base_url=server.base, timeout=30) as c:
            while not done.is_set() and _work_in_flight(c) < 1:  # wait for the batch to hold it
                time.sleep(0.005)
            while not done.is_set():
                r = c.post("/v1/predict", json={"text": OBVIOUS})
                if r.status_code == 503:
                    shed.append(r)
                    probes.append(c.get("/healthz"))
                    if which == "server":  # and the probe listener of its own
                        probes.append(httpx.get(f"http://127.0.0.1:{HEALTH_PORT}/healthz", timeout=30))
                    if len(shed) >= 5:
                        break
                time.sleep(0.01)
        t.join(timeout=120)
        assert result.get("batch") == 200
        if shed:
            break
    assert shed, "the slot was never seen taken: the batch finished before any request came"
    for r in shed:
        err = r.json()["error"]
        assert err["code"] == "overloaded" and err["request_id"] == r.headers["x-request-id"]
        assert int(r.headers["retry-after"]) >= 1
    for p in probes:
        assert p.status_code == 200 and p.json()["model"], p.text
    # and once the slot is free again, the same request is served
    with httpx.Client(base_url=server.base, timeout=30) as c:
        assert c.post("/v1/predict", json={"text": OBVIOUS}).status_code == 200


def test_queue_timeout_refuses_a_request_that_waited_too_long():
    from lapor_nlp.serve.limits import Limits, Overloaded

    async def main():
        limits = Limits(max_concurrency=10, queue_timeout=0.05, max_buffered_bytes=10)
        first = asyncio.ensure_future(limits.run(time.sleep, 0.3))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as info:
            await limits.run(lambda: "never run")
        assert info.value.reason == "queue_timeout"
        await first
        assert await limits.run(lambda: "runs") == "runs"
        with pytest.raises(Overloaded):
            limits.reserve(11)
        limits.close()

    asyncio.run(main())


def test_the_health_port_answers_probes(server, router):
    base = f"http://127.0.0.1:{HEALTH_PORT}"
    assert httpx.get(base + "/healthz", timeout=30).json() == {
        "status": "ok", "model": router.name, "version": router.version}
    ready = httpx.get(base + "/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert httpx.get(base + "/v1/predict", timeout=30).status_code == 404  # probes only


# -- slow and idle clients -------------------------------------------------------------------------
def test_idle_and_slow_header_connections_are_closed(server):
    """A connection that sends nothing, or its headers a byte at a time, was held for ever (92 s
    at a byte every 5 s); now it is closed after --header-timeout."""
    idle = raw(server)
    closed, got = closed_within(idle, 5 * TIMEOUT + 3)
    assert closed and got == b""
    slow = raw(server, b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed, _ = closed_within(slow, 5 * TIMEOUT + 3, trickle=b"X")
    assert closed
    # after a response, an idle keep-alive connection is closed too
    kept = raw(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    closed, got = closed_within(kept, 5 * TIMEOUT + 3)
    assert closed and status_of(got) == 200


def test_a_slow_body_gets_408_and_the_connection_closes(server):
    s = raw(server, post_head("/v1/predict", 1000) + b'{"text": "')
    closed, got = closed_within(s, 5 * TIMEOUT + 3, trickle=b"a")
    assert closed
    assert status_of(got) == 408, got[:200]
    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"


def test_bodies_in_memory_are_capped(server):
    """300 half-sent 1 MB bodies took RSS from 170 to 459 MB; now the declared bytes are reserved
    against --max-buffered-bytes and a body past it is refused at once (503, connection closed)."""
    socks = [raw(server, post_head("/v1/predict", MAX_BODY) + b'{"text": "' + b"a" * 1000)
             for _ in range(4)]
    try:
        answers = []
        for s in socks:
            s.settimeout(5 * TIMEOUT + 3)
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            answers.append(got)
        statuses = [status_of(a) for a in answers]
        # the first two fit (and then time out waiting for the rest of their body), the others not
        assert statuses[:2] == [408, 408], statuses
        assert statuses[2:] == [503, 503], statuses
        assert all(b"retry-after: 1" in a.lower() for a in answers[2:])
    finally:
        for s in socks:
            s.close()
    # the reservations were given back: a normal request is served
    with httpx.Client(base_url=server.base, timeout=30) as c:
        assert c.post("/v1/predict", json={"text": OBVIOUS}).status_code == 200


# -- what an operator sees -------------------------------------------------------------------------
def _samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples.get(name, ()) if all(s.labels.get(k) == v
                                                              for k, v in labels.items()))


def test_metrics_scrape_in_the_prometheus_text_format(server, router):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        before = _samples(c.get("/metrics").text)
        for _ in range(3):
            assert c.post("/v1/predict", json={"text": OBVIOUS}).status_code == 200
        batch = c.post("/v1/predict/batch", json={"items": [{"text": OBVIOUS}, {"text": ""}]})
        assert batch.status_code == 200
        # a shed request (buffer limit), deterministic
        socks = [raw(server, post_head("/v1/predict", MAX_BODY) + b"{") for _ in range(3)]
        socks[2].settimeout(10)
        assert status_of(socks[2].recv(4096)) == 503
        for s in socks:
            s.close()
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = _samples(r.text)

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("lapor_http_requests_total", route="/v1/predict", method="POST", status="200") == 3
    assert grew("lapor_http_request_duration_seconds_count", route="/v1/predict") >= 3
    assert grew("lapor_predictions_total", task="agency", label="dishub") == 4
    assert grew("lapor_predictions_total", task="agency") == 4
    assert grew("lapor_batch_item_errors_total") == 1
    assert grew("lapor_http_shed_total", route="/v1/predict", reason="buffer") == 1
    assert _value(after, "lapor_predictions_needs_review_total") <= \
        _value(after, "lapor_predictions_total", task="agency")
    info = after["lapor_model_info"][0].labels
    assert info["name"] == router.name and info["version"] == router.version
    assert "lapor_http_requests_in_flight" in after and "lapor_work_requests_in_flight" in after
    assert MARKER not in r.text


def test_json_logs_one_line_per_request_without_text(server):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        c.post("/v1/predict", json={"text": MARKER}, headers={"X-Request-ID": "json-log-1"})
        c.post("/v1/predict/batch", json={"items": [{"text": MARKER}, {"text": 5, "title": MARKER}]},
               headers={"X-Request-ID": "json-log-2"})
    time.sleep(0.3)
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    requests = {x["request_id"]: x for x in lines if x.get("event") == "request"}
    one = requests["json-log-1"]
    assert (one["route"], one["method"], one["status"]) == ("/v1/predict", "POST", 200)
    assert isinstance(one["latency_ms"], float) and one["latency_ms"] > 0
    assert requests["json-log-2"]["route"] == "/v1/predict/batch"
    assert "Zebrakuda9" not in server.log() and "Sidodadi" not in server.log()
