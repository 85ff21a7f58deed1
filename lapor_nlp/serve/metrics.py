"""Prometheus metrics of the service (``GET /metrics``, the Prometheus text format).

One :class:`~prometheus_client.CollectorRegistry` per app, never the global one: two apps in one
process (tests, an embedding server) count apart. With ``--workers N`` each worker counts its own
requests, and a scrape reaches whichever worker accepted the connection: scrape each worker on
its own port, or run one worker per container, for totals. Counts only, never a complaint text.

Review rate: ``rate(lapor_predictions_needs_review_total[5m]) / rate(lapor_predictions_total[5m])``
(``lapor_predictions_total`` has a ``task`` label: take one task, e.g. ``task="agency"``).
"""

from __future__ import annotations

from .._version import __version__
from ..errors import DependencyError

try:
    from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                                   Info, generate_latest)
except ImportError:
    raise DependencyError("lapor_nlp.serve needs prometheus-client for /metrics: "
                          "pip install 'lapor-nlp[serve]'") from None

#: Paths counted under their own name; anything else (404 scans) is counted as "other", so that
#: a client cannot make the number of series grow.
ROUTES = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/mask-pii", "/v1/feedback", "/v1/model",
                    "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})
#: Latency buckets (s): from a cached prediction (~1 ms) to a large batch.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

class Metrics:
    """The app's collectors. The gate counts every request; the routes count predictions."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, limits):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("lapor_http_requests", "HTTP requests answered, by route, method "
                                "and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram("lapor_http_request_duration_seconds", "time from the request's "
                                 "first handling to its last byte, by route", ["route"],
                                 buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("lapor_http_requests_in_flight", "HTTP requests being handled",
                               registry=r)
        work = Gauge("lapor_work_requests_in_flight", "predict, batch and mask-pii requests "
                     "admitted (the --max-concurrency limit counts these)", registry=r)
        work.set_function(lambda: limits.in_flight)
        buffered = Gauge("lapor_request_body_bytes_buffered", "request body bytes held in memory "
                         "(the --max-buffered-bytes limit counts these)", registry=r)
        buffered.set_function(lambda: limits.buffered)
        self.shed = Counter("lapor_http_shed", "requests refused for load (503 + Retry-After), by "
                            "route and reason: concurrency, queue_timeout, buffer", ["route", "reason"],
                            registry=r)
        self.timeouts = Counter("lapor_http_body_timeouts", "requests whose body did not arrive in "
                                "time (408)", registry=r)
        self.predictions = Counter("lapor_predictions", "complaints routed, by task and predicted "
                                   "label", ["task", "label"], registry=r)
        self.needs_review = Counter("lapor_predictions_needs_review", "complaints routed with "
                                    "needs_review set", registry=r)
        self.review_reasons = Counter("lapor_predictions_review_reasons", "review reasons given, by "
                                      "reason", ["reason"], registry=r)
        self.item_errors = Counter("lapor_batch_item_errors", "batch items answered with an error, "
                                   "by code", ["code"], registry=r)
        self.model = Info("lapor_model", "the model being served", registry=r)
        self.model.info({"name": "", "version": "", "lapor_nlp_version": __version__})

    def model_loaded(self, name: str, version: str) -> None:
        self.model.info({"name": name, "version": version, "lapor_nlp_version": __version__})

    def request_done(self, path: str, method: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        # Bounded like the route: a client may send any token as its method (h11 accepts them),
        # and each new label value would be a new series kept for the server's lifetime.
        method = method if method in _METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def count_predictions(self, predictions) -> None:
        """Count routed complaints (:class:`~lapor_nlp.schemas.Prediction` objects); called on the
        prediction thread (prometheus_client is thread-safe)."""
        reviewed = 0
        for pred in predictions:
            for task, got in (("topic", pred.topic), ("agency", pred.agency)):
                if got is not None:
                    self.predictions.labels(task, got.label).inc()
            if pred.needs_review:
                reviewed += 1
                for reason in pred.review_reasons:
                    self.review_reasons.labels(reason).inc()
        if reviewed:
            self.needs_review.inc(reviewed)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
