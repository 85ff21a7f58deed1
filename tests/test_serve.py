"""The HTTP service, end to end: `python -m lapor_nlp serve` in a subprocess on a free loopback port,
called with httpx (real sockets, real uvicorn). Traffic only ever goes to 127.0.0.1.

A few tests drive the app in-process (no lifespan: /readyz before the model is loaded; a router
that raises: what a 500 looks like)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


REPO = Path(__file__).resolve().parent.parent
MAX_BATCH = 8
OBVIOUS = "Lampu PJU di jalan kami mati sudah seminggu, mohon diperbaiki, Kota Malang"
#: Appears in request bodies only; the server log must never contain it.
MARKER = "Zebrakuda9 warga Kelurahan Sidodadi mengadu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        cmd = [sys.executable, "-m", "lapor_nlp", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), *args]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("LAPOR_NLP_SERVE_")
                    and k != "LAPOR_NLP_API_KEY"}
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**base_env, **(env or {})})

    @classmethod
    def running(cls, args: list[str], log_path: Path, env: dict | None = None):
        """A pytest fixture's body: start, wait until ready, hand over, stop (also on failure)."""
        srv = cls(args, log_path, env)
        try:
            srv.wait_ready()
            yield srv
        finally:
            srv.stop()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    yield from Server.running(["--model", str(model_dir), "--max-batch", str(MAX_BATCH), "--log-level", "info"],
                              tmp_path_factory.mktemp("serve") / "server.log")


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base, timeout=30.0) as c:
        yield c


def post_raw(client, path: str, body: bytes, content_type: str | None = "application/json", **kw):
    headers = {"content-type": content_type} if content_type else {}
    return client.post(path, content=body, headers={**headers, **kw.pop("headers", {})}, **kw)


def assert_error(r, status: int, code: str | None = None, field: str | None = "<any>") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["message"]
    assert err["request_id"] == r.headers["x-request-id"]
    if code is not None:
        assert err["code"] == code, err
    if field != "<any>":
        assert err["field"] == field, err
    return err


# -- the happy paths --------------------------------------------------------------------------------
def test_predict_routes_an_obvious_complaint(client):
    r = client.post("/v1/predict", json={"text": OBVIOUS, "id": "c-1", "channel": "web"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["agency"]["label"] == "dishub"
    assert p["routed_to"] == "Dinas Perhubungan Kota Malang"
    assert p["id"] == "c-1"
    assert p["model"] and p["model_version"]
    from lapor_nlp import Prediction

    Prediction.model_validate(p)  # the response is exactly the Python API's model


def test_predict_matches_the_python_api(client, router):
    body = {"text": "Sampah menumpuk di TPS pasar sudah tiga hari tidak diangkut, bau sekali",
            "location": {"regency": "Kabupaten Tulungagung"}}
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 200
    local = router.predict(body).model_dump(mode="json")
    remote = r.json()
    assert remote["agency"]["label"] == local["agency"]["label"]
    assert remote["topic"]["label"] == local["topic"]["label"]
    assert remote["routed_to"] == local["routed_to"]
    assert remote["agency"]["score"] == pytest.approx(local["agency"]["score"])


def test_batch_keeps_order_and_ids(client):
    items = [{"text": OBVIOUS, "id": "a"},
             {"text": "Guru honorer di sekolah kami belum digaji tiga bulan", "id": "b"},
             {"text": "Jalan desa rusak parah berlubang, mohon diperbaiki", "id": 7},
             {"text": "Pelayanan KTP elektronik di kecamatan sangat lambat"},
             {"text": "Listrik padam terus setiap malam di kampung kami", "id": "e"}]
    r = client.post("/v1/predict/batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()["items"]
    assert [p["id"] for p in out] == ["a", "b", "7", None, "e"]
    assert out[0]["routed_to"] == "Dinas Perhubungan Kota Malang"
    single = client.post("/v1/predict", json=items[1]).json()
    assert out[1]["agency"] == single["agency"]
    empty = client.post("/v1/predict/batch", json={"items": []})
    assert empty.status_code == 200 and empty.json() == {"items": []}


def test_mask_pii(client):
    r = client.post("/v1/mask-pii", json={"text": "hubungi saya di 0812-3456-7890 atau budi@contoh.id"})
    assert r.status_code == 200
    masked = r.json()["text"]
    assert "[TELEPON]" in masked and "[EMAIL]" in masked
    assert "3456" not in masked and "budi@" not in masked


def test_model_info(client, router):
    r = client.get("/v1/model")
    assert r.status_code == 200
    info = r.json()
    assert info["name"] == router.name and info["version"] == router.version
    assert "dishub" in info["labels"]["agency"] and info["labels"]["topic"]
    assert set(info["metrics"]) >= {"topic", "agency"}
    assert info["limits"]["max_batch"] == MAX_BATCH
    assert "files" not in info


def test_health_and_readiness(client, router):
    # /healthz names the loaded model (it said model: null after loading, issue 18)
    assert client.get("/healthz").json() == {"status": "ok", "model": router.name,
                                             "version": router.version}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_request_id_is_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "req-42.a_b"})
    assert r.headers["x-request-id"] == "req-42.a_b"
    made = client.get("/healthz", headers={"X-Request-ID": "not a valid id!"}).headers["x-request-id"]
    assert made != "not a valid id!" and len(made) == 32
    assert client.get("/healthz").headers["x-request-id"] != made


def test_openapi_uses_the_python_models(client):
    from lapor_nlp.schemas import Complaint, Prediction

    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["Complaint"]["properties"]) == set(Complaint.model_json_schema()["properties"])
    assert set(schemas["Prediction"]["properties"]) == set(Prediction.model_json_schema()["properties"])
    op = spec["paths"]["/v1/predict"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Complaint")
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Prediction")
    assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    batch = spec["paths"]["/v1/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    ref = batch["schema"]["$ref"].rsplit("/", 1)[1]
    assert schemas[ref]["properties"]["items"]["maxItems"] == MAX_BATCH


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b'{"text": "jalan rusak"', b"{text: 1}", b"\xff\xfe{}", b"[1,",
                                  b'{"text": "jalan \xff rusak"}'])
def test_malformed_json_is_a_400(client, body):
    assert_error(post_raw(client, "/v1/predict", body), 400, "malformed_json")


def test_wrong_type_names_the_field(client):
    err = assert_error(client.post("/v1/predict", json={"text": 123}), 422, "invalid_request", "text")
    assert "text" in err["message"]
    assert_error(client.post("/v1/predict", json={"text": "x", "location": {"regency": 5}}), 422,
                 "invalid_request", "location.regency")
    assert_error(client.post("/v1/predict/batch", json={"items": {"text": "a"}}), 422, None, "items")


def test_missing_text_and_unknown_fields(client):
    err = assert_error(client.post("/v1/predict", json={"title": "judul saja"}), 422,
                       "invalid_request", "text")
    assert "required" in err["message"].lower()
    assert_error(client.post("/v1/predict", json={"text": "x", "txet": "y"}), 422, "invalid_request",
                 "txet")
    assert_error(client.post("/v1/predict", json=["not", "an", "object"]), 422, "invalid_request", None)
    assert_error(post_raw(client, "/v1/predict", b""), 422, "invalid_request", None)
    assert_error(client.post("/v1/mask-pii", json={"text": ["a"]}), 422, "invalid_request", "text")


def test_mask_pii_refuses_a_lone_surrogate_as_predict_does(client):
    # was a 500 (PydanticSerializationError) while /v1/predict answered 422 (issue 18); then both
    # said "invalid_request" and mask-pii "Value error, ...": now the library's code, in our words
    body = b'{"text": "0812 3456 7890 \\ud800"}'
    for path in ("/v1/mask-pii", "/v1/predict"):
        err = assert_error(post_raw(client, path, body), 422, "LAPOR-E007", "text")
        assert "surrogate" in err["message"] and "Value error" not in err["message"]
    assert client.post("/v1/mask-pii", json={"text": "0812 3456 7890"}).json() == {"text": "[TELEPON]"}


def test_a_schema_error_on_an_object_is_not_called_a_non_object(client):
    # pydantic's wording leaked: "the request body must be a JSON object: Value error, ..." for a
    # body that is an object with one invalid field
    for body, field in (({"id": "x", "corrected": {}, "who": "ani"}, "corrected"),
                        ({"id": "x", "corrected": {"agency": "dinsos"}}, "who")):
        err = assert_error(client.post("/v1/feedback", json=body), 422, "invalid_request", field)
        assert "JSON object" not in err["message"] and "Value error" not in err["message"]
        assert err["message"].startswith(f"{field}: ")
    err = assert_error(client.post("/v1/predict", json={"text": ""}), 422, "LAPOR-E006", "text")
    assert "empty" in err["message"]


def test_serve_help_lists_every_endpoint():
    out = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120).stdout
    for endpoint in ("/v1/predict/batch", "/v1/mask-pii", "/v1/feedback", "/v1/model", "/metrics",
                     "/healthz", "/readyz"):
        assert endpoint in out, endpoint


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deeply_nested_json_is_not_called_invalid_utf8(client, depth):
    # valid JSON ~990 levels deep was answered 400 "not valid UTF-8 JSON" (issue 18): too deep to
    # parse is json_too_deep; shallow enough to parse is a schema error (text is not a string)
    body = ('{"text": ' + "[" * depth + "]" * depth + "}").encode()
    r = post_raw(client, "/v1/predict", body)
    err = r.json()["error"]
    assert "UTF-8" not in err["message"]
    if r.status_code == 400:
        assert err["code"] == "json_too_deep", err
    else:
        assert_error(r, 422, "invalid_request", "text")
    if depth > 10_000:
        assert_error(r, 400, "json_too_deep")


def test_batch_answers_each_item(client):
    """One bad item no longer fails the batch (issue 18): each gets its Prediction or its error,
    at its position, with the library's code and the field."""
    long_text = "jalan rusak " * 1700
    items = [{"text": OBVIOUS, "id": "ok-1"}, {"text": "", "id": "empty"}, {"text": None},
             "just a string", {"text": "jalan rusak", "txet": 1, "id": 5},
             {"text": long_text, "id": "long"}, {"text": "Guru honorer belum digaji", "id": "ok-2"}]
    r = client.post("/v1/predict/batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()["items"]
    assert len(out) == len(items)
    assert out[0]["id"] == "ok-1" and out[0]["routed_to"] == "Dinas Perhubungan Kota Malang"
    assert out[6]["id"] == "ok-2" and out[6]["agency"]["label"]
    errors = {i: out[i]["error"] for i in range(1, 6)}
    assert all(e["index"] == i for i, e in errors.items())
    assert errors[1]["code"].startswith("LAPOR-E") and errors[1]["field"] == "items.1.text"
    assert errors[2]["code"].startswith("LAPOR-E") and errors[2]["field"] == "items.2.text"
    assert errors[3]["code"] == "invalid_request" and errors[3]["field"] == "items.3"
    assert errors[4]["field"] == "items.4.txet" and out[4]["id"] == "5"
    assert errors[5]["code"] == "text_too_long" and out[5]["id"] == "long"
    assert errors[1]["code"] != errors[4]["code"]  # distinct causes, distinct codes
    assert r.headers["x-item-errors"] == "5"
    # the good items are routed exactly as alone
    assert out[6]["agency"] == client.post("/v1/predict", json=items[6]).json()["agency"]


def test_batch_over_the_limit(client):
    items = [{"text": f"jalan rusak nomor {i}"} for i in range(MAX_BATCH + 1)]
    err = assert_error(client.post("/v1/predict/batch", json={"items": items}), 422,
                       "batch_too_large", "items")
    assert str(MAX_BATCH) in err["message"]


def test_text_over_the_limit_is_refused_not_truncated(client):
    long_text = "jalan rusak " * 1700  # 20,400 characters > 20,000
    err = assert_error(client.post("/v1/predict", json={"text": long_text}), 422, "text_too_long",
                       "text")
    assert "20000" in err["message"]
    batch = client.post("/v1/predict/batch", json={"items": [{"text": "a"}, {"text": long_text}]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["items"][1]["error"]["code"] == "text_too_long"
    assert batch.json()["items"][1]["error"]["field"] == "items.1.text"
    assert_error(client.post("/v1/mask-pii", json={"text": long_text}), 422, "text_too_long", "text")
    ok = client.post("/v1/predict", json={"text": long_text[:20_000]})
    assert ok.status_code == 200 and ok.json()["truncated"] is False


def test_oversize_body_is_a_413(client):
    body = json.dumps({"text": "a" * 1_000_100}).encode()
    assert_error(post_raw(client, "/v1/predict", body), 413, "payload_too_large")

    def chunks():  # no Content-Length: the size is counted while reading
        yield b'{"text": "'
        for _ in range(40):
            yield b"b" * 30_000
        yield b'"}'

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    # the connection pool recovers: the next request on a new connection works
    assert client.post("/v1/predict", json={"text": OBVIOUS}).status_code == 200


def test_wrong_content_type_method_and_path(client):
    assert_error(post_raw(client, "/v1/predict", b'{"text": "a"}', "text/plain"), 415,
                 "unsupported_media_type")
    assert_error(post_raw(client, "/v1/predict", b'{"text": "a"}', None), 415, "unsupported_media_type")
    assert post_raw(client, "/v1/predict", b'{"text": "jalan rusak"}',
                    "application/json; charset=utf-8").status_code == 200
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")
    assert_error(client.get("/v2/nothing"), 404, "not_found")


def test_request_log_has_ids_and_timings_but_no_text(client, server):
    rid = "log-check-1"
    client.post("/v1/predict", json={"text": MARKER}, headers={"X-Request-ID": rid})
    client.post("/v1/predict", json={"text": 5, "title": MARKER}, headers={"X-Request-ID": "log-check-2"})
    post_raw(client, "/v1/predict", ('{"text": "' + MARKER).encode(), headers={"X-Request-ID": "log-check-3"})
    client.post("/v1/mask-pii", json={"text": MARKER + " 081234567890"})
    time.sleep(0.3)
    log = server.log()
    assert "POST /v1/predict 200" in log and f"id={rid}" in log
    line = next(x for x in log.splitlines() if f"id={rid}" in x)
    assert "ms" in line
    assert "id=log-check-2" in log and "id=log-check-3" in log
    assert "Zebrakuda9" not in log and "Sidodadi" not in log and "081234567890" not in log


# -- fuzzing: never a 5xx ---------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)
location = st.dictionaries(
    st.sampled_from(["province", "regency", "district", "subdistrict", "address", "rt"]),
    st.none() | st.text(max_size=30) | st.integers() | json_values, max_size=4)
complaint_like = st.fixed_dictionaries(
    {"text": st.text(max_size=300) | json_values},
    optional={"title": st.none() | st.text(max_size=50) | st.integers(),
              "id": st.none() | st.text(max_size=20) | st.integers() | st.booleans(),
              "date": st.none() | st.text(max_size=25) | st.dates().map(str) | st.integers(),
              "channel": st.none() | st.text(max_size=20),
              "location": st.none() | location | json_values,
              "extra": json_values})
FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _no_5xx(r):
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert "error" in r.json()


@FUZZ
@given(body=json_values)
def test_fuzz_arbitrary_json(client, body):
    _no_5xx(client.post("/v1/predict", json=body))
    _no_5xx(client.post("/v1/predict/batch", json={"items": body}))


@FUZZ
@given(body=st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(client, body):
    _no_5xx(post_raw(client, "/v1/predict", body))
    _no_5xx(post_raw(client, "/v1/mask-pii", body))


@FUZZ
@given(item=complaint_like, items=st.lists(complaint_like, max_size=MAX_BATCH + 2))
def test_fuzz_complaint_shaped(client, item, items):
    r = client.post("/v1/predict", json=item)
    _no_5xx(r)
    if r.status_code == 200:
        assert r.json()["model"]
    r = client.post("/v1/predict/batch", json={"items": items})
    _no_5xx(r)
    if r.status_code == 200:
        assert len(r.json()["items"]) == len(items)


try:
    import schemathesis
    from schemathesis import checks as _st_checks

    from lapor_nlp.serve import create_app

    _schema = schemathesis.openapi.from_dict(create_app(None, max_batch=MAX_BATCH).openapi())
except ImportError:  # schemathesis is optional ([test] extra)
    _schema = None

if _schema is not None:
    @_schema.parametrize()
    @settings(max_examples=100, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much])
    def test_schemathesis_openapi(case, server):
        """Schema-driven fuzzing from the OpenAPI document: no 5xx, responses match the spec."""
        case.call_and_validate(base_url=server.base, checks=[
            _st_checks.not_a_server_error, _st_checks.status_code_conformance,
            _st_checks.content_type_conformance, _st_checks.response_schema_conformance])
else:
    @pytest.mark.skip(reason="schemathesis not installed (pip install schemathesis)")
    def test_schemathesis_openapi():
        pass


# -- auth, workers, refusal, shutdown ---------------------------------------------------------------
def test_api_key_with_two_workers(model_dir, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-key-123\n")
    srv = Server(["--model", str(model_dir), "--workers", "2", "--api-key-file", str(key_file),
                  "--max-batch", "3", "--home-region", "Kota Surabaya"], tmp_path / "server.log")
    try:
        # /readyz needs no key, so wait_ready works; the workers share the port.
        srv.wait_ready()
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            err = assert_error(c.post("/v1/predict", json={"text": OBVIOUS}), 401, "unauthorized")
            assert "X-API-Key" in err["message"]
            assert_error(c.post("/v1/predict", json={"text": OBVIOUS},
                                headers={"X-API-Key": "s3cret-key-124"}), 401, "unauthorized")
            assert_error(c.get("/v1/model"), 401, "unauthorized")
            assert_error(c.get("/openapi.json"), 401, "unauthorized")
            assert c.get("/healthz").status_code == 200
            good = {"X-API-Key": "s3cret-key-123"}
            r = c.post("/v1/predict", json={"text": OBVIOUS}, headers=good)
            assert r.status_code == 200 and r.json()["agency"]["label"] == "dishub"
            spec = c.get("/openapi.json", headers=good).json()
            assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
            # settings reach every worker (they come through the environment)
            for _ in range(4):
                with httpx.Client(base_url=srv.base, timeout=30, headers=good) as fresh:
                    items = [{"text": "jalan rusak"}] * 4
                    assert_error(fresh.post("/v1/predict/batch", json={"items": items}), 422,
                                 "batch_too_large")
                    placeless = {"text": "Lampu penerangan jalan di depan rumah kami mati seminggu"}
                    p = fresh.post("/v1/predict", json=placeless).json()
                    assert p["routed_to"] == "Dinas Perhubungan Kota Surabaya", p["routed_to"]
        assert "s3cret" not in srv.log()
    finally:
        rc = srv.stop()
    assert rc == 0, srv.log()


def test_only_the_three_loopback_names_serve_without_a_key():
    from lapor_nlp.serve.settings import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"]))
    assert not any(map(is_loopback, ["127.0.0.2", "127.1.2.3", "::ffff:127.0.0.1", "0.0.0.0",
                                     "::", "example.com"]))
    from lapor_nlp.cli import serve as serve_cli

    assert "127.0.0.1, ::1 and localhost" in " ".join(serve_cli.__doc__.split()) or \
        "127.0.0.1, ::1, localhost" in serve_cli.__doc__


def test_non_loopback_without_a_key_refuses_to_start(model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAPOR_NLP_API_KEY"}
    # 127.0.0.2 too: only 127.0.0.1, ::1 and localhost count as loopback, as --help says
    for host in ("0.0.0.0", "::", "192.0.2.10", "127.0.0.2"):
        # refused before anything is bound: no socket is ever opened on these addresses
        r = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--model", str(model_dir),
                            "--host", host, "--port", str(free_port())],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "API key" in r.stderr and "--no-auth" in r.stderr


def test_unknown_home_region_stops_before_serving(model_dir):
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--model", str(model_dir),
                        "--home-region", "Kota Atlantis", "--port", str(free_port())],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Atlantis" in r.stderr and "Traceback" not in r.stderr


def test_a_desk_service_routes_among_its_units(model_dir, tmp_path):
    srv = Server(["--model", str(model_dir), "--no-auth", "--scope", "kemenimipas"], tmp_path / "desk.log")
    try:
        srv.wait_ready()
        r = httpx.post(srv.base + "/v1/predict", timeout=30,
                       json={"text": "jalan berlubang di depan pasar, Kabupaten Tulungagung"})
        assert r.status_code == 200
        body = r.json()
        assert body["agency"]["label"] in ("imigrasi", "pemasyarakatan")
        assert "outside_scope" in body["review_reasons"]
    finally:
        assert srv.stop() == 0
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--model", str(model_dir), "--no-auth",
                        "--scope", "kementerian_sihir", "--port", str(free_port())],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "unknown scope" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_exit_1_with_a_clear_error(model_dir, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--model", str(model_dir),
                            "--no-auth", "--workers", workers, "--port", str(taken.getsockname()[1])],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "LAPOR-E050" in r.stderr and "Traceback" not in r.stderr


def test_missing_model_dir_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lapor_nlp", "serve", "--model", str(tmp_path / "nope"),
                        "--port", str(free_port())], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "LAPOR-E032" in r.stderr and "Traceback" not in r.stderr


def test_missing_fastapi_gives_the_install_hint():
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from lapor_nlp.cli import main; sys.exit(main(['serve']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "pip install 'lapor-nlp[serve]'" in r.stderr
    # imported from Python: the library's typed error, with the same hint
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from lapor_nlp.errors import DependencyError\n"
            "try:\n    from lapor_nlp.serve import create_app\nexcept DependencyError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "pip install 'lapor-nlp[serve]'" in r.stdout, r.stderr[-500:]


def test_api_key_sources(tmp_path):
    from lapor_nlp.errors import InputValueError
    from lapor_nlp.serve import ENV_API_KEY, find_api_key

    key_file = tmp_path / "key"
    key_file.write_text("  s3cret \nignored\n", encoding="utf-8")
    env = {ENV_API_KEY: "from-env"}
    assert find_api_key(no_auth=False, key_file=key_file, environ=env) == "s3cret"  # file first
    assert find_api_key(no_auth=False, key_file=None, environ=env) == "from-env"
    assert find_api_key(no_auth=False, key_file=None, environ={}) is None
    assert find_api_key(no_auth=True, key_file=key_file, environ=env) is None
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(InputValueError, match="empty"):
        find_api_key(no_auth=False, key_file=tmp_path / "empty", environ={})


def test_sigterm_is_a_graceful_exit(model_dir, tmp_path):
    srv = Server(["--model", str(model_dir)], tmp_path / "server.log")
    try:
        srv.wait_ready()
        assert httpx.post(srv.base + "/v1/predict", json={"text": OBVIOUS}).status_code == 200
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=10)
        assert rc == 0, srv.log()
        assert time.monotonic() - t0 < 10
        assert "Shutting down" in srv.log() and "stopped" in srv.log()
    finally:
        srv.stop()


# -- in-process: readiness before the model, and what a 500 looks like -----------------------------
def _in_process(app, run_lifespan: bool):
    """An httpx client on the ASGI app (no socket); with the lifespan (model load) when asked."""
    import asyncio
    import contextlib

    async def go(fn):
        lifespan = app.router.lifespan_context(app) if run_lifespan else contextlib.nullcontext()
        async with lifespan:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await fn(c)

    return lambda fn: asyncio.run(go(fn))


def test_not_ready_before_the_model_is_loaded(model_dir):
    from lapor_nlp.serve import create_app

    run = _in_process(create_app(model_dir), run_lifespan=False)

    async def calls(c):
        return (await c.get("/healthz"), await c.get("/readyz"),
                await c.post("/v1/predict", json={"text": "jalan rusak"}))

    health, ready, predict = run(calls)
    assert health.status_code == 200
    assert_error(ready, 503, "not_ready")
    assert_error(predict, 503, "not_ready")


def test_internal_errors_leak_nothing(model_dir, caplog):
    from lapor_nlp.errors import InputValueError, ModelIntegrityError
    from lapor_nlp.serve import create_app

    app = create_app(model_dir)

    def boom(*a, **k):
        raise RuntimeError(f"failed on {MARKER}")

    def bad_input(*a, **k):
        raise InputValueError("that complaint is unusable")

    def server_side(*a, **k):
        raise ModelIntegrityError(f"hash mismatch near {MARKER}")

    async def calls(c):
        out = []
        for fn in (boom, bad_input, server_side):
            app.state.router.predict = fn
            out.append(await c.post("/v1/predict", json={"text": MARKER},
                                    headers={"X-Request-ID": f"boom-{len(out)}"}))
        return out

    with caplog.at_level("INFO", logger="lapor_nlp.serve"):
        r500, r422, r500b = _in_process(app, run_lifespan=True)(calls)
    err = assert_error(r500, 500, "internal_error")
    assert "boom-0" in err["message"]
    for r in (r500, r500b):
        assert "Zebrakuda9" not in r.text and "Traceback" not in r.text
    assert "RuntimeError" not in r500.text
    assert_error(r422, 422, "LAPOR-E002")
    assert_error(r500b, 500, "LAPOR-E030")
    assert "RuntimeError" in caplog.text and "boom-0" in caplog.text
    assert "Zebrakuda9" not in caplog.text


def test_create_app_rejects_bad_limits():
    from lapor_nlp.errors import InputValueError
    from lapor_nlp.serve import create_app

    with pytest.raises(InputValueError):
        create_app(None, max_batch=0)


def test_metrics_keep_a_bounded_set_of_method_labels():
    # A client may send any token as its HTTP method; each new value must not become a new series.
    from prometheus_client.parser import text_string_to_metric_families

    from lapor_nlp.serve.metrics import Metrics

    from types import SimpleNamespace

    m = Metrics(SimpleNamespace(in_flight=0, buffered=0))
    for i in range(50):
        m.request_done("/v1/predict", f"X{i}", 401, 0.001)
    m.request_done("/v1/predict", "POST", 200, 0.001)
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    methods = {s.labels["method"] for s in families["lapor_http_requests"].samples if "method" in s.labels}
    assert methods == {"other", "POST"}
