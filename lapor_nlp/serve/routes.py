"""The endpoints: what each path answers once the gate has let the request through.

They read the app's loaded model and limits from ``request.app.state`` (set by
:func:`lapor_nlp.serve.create_app` and the model lifespan), and raise
:class:`~lapor_nlp.serve.errors.ApiError` for the error handlers to answer.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time,
# and the batch endpoint's request model is made per app (its max_length is a setting).
import json

from ..errors import LaporError
from ..schemas import Complaint, Prediction
from ..text.pii import mask_pii
from ._fastapi import FastAPI, Request, Response
from .errors import ApiError
from .models import (ERROR_RESPONSES, BatchResponse, MaskRequest, MaskResponse, ModelInfo, Status,
                     batch_request_model)

_to_json = Prediction.__pydantic_serializer__.to_json


def _ready_router(request: Request):
    router = request.app.state.router
    if router is None:
        raise ApiError(503, "not_ready", "the model is still loading; retry shortly",
                       headers={"Retry-After": "1"})
    return router


def _too_long(request: Request, text, field: str) -> str | None:
    """Why ``text`` is refused for its length (refused, never silently truncated), or None."""
    limit = request.app.state.limits["max_text_chars"]
    if isinstance(text, str) and len(text) > limit:
        return f"{field} has {len(text)} characters; the limit is {limit}"
    return None


def _check_text(request: Request, text: str, field: str) -> None:
    why = _too_long(request, text, field)
    if why is not None:
        raise ApiError(422, "text_too_long", why, field=field)


def _predict_one(router, complaint, metrics) -> Prediction:
    """On the prediction thread."""
    pred = router.predict(complaint)
    metrics.count_predictions((pred,))
    return pred


def _predict_many(router, items, metrics) -> list:
    """On the prediction thread: a Prediction or the item's LaporError at each position."""
    preds = router.predict_batch(items, on_error="return")
    metrics.count_predictions([p for p in preds if isinstance(p, Prediction)])
    return preds


async def predict(complaint: Complaint, request: Request):
    router = _ready_router(request)
    _check_text(request, complaint.text, "text")
    state = request.app.state
    pred = await state.work.run(_predict_one, router, complaint, state.metrics)
    return Response(_to_json(pred), media_type="application/json")


def _item_error(i: int, item, code: str, message: str, field: str | None) -> bytes:
    item_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or len(item_id) > 200:
        item_id = None
    return json.dumps({"id": item_id, "error": {"code": code, "message": message,
                                                "field": f"items.{i}" + (f".{field}" if field else ""),
                                                "index": i}}, ensure_ascii=False).encode("utf-8")


async def _predict_items(items: list, request: Request) -> Response:
    """Each item answered at its position: its Prediction, or an error naming it (one bad item
    does not fail the others)."""
    router = _ready_router(request)
    state = request.app.state
    answers: list[bytes | None] = [None] * len(items)
    codes: list[str] = []  # of the items answered with an error

    def error_at(i: int, code: str, message: str, field: str | None) -> None:
        answers[i] = _item_error(i, items[i], code, message, field)
        codes.append(code)

    usable, where = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            error_at(i, "invalid_request", "an item must be a JSON object (a Complaint)", None)
            continue
        why = _too_long(request, item.get("text"), f"items.{i}.text")
        if why is not None:
            error_at(i, "text_too_long", why, "text")
            continue
        usable.append(item)
        where.append(i)
    preds = await state.work.run(_predict_many, router, usable, state.metrics) if usable else []
    for i, pred in zip(where, preds):
        if isinstance(pred, LaporError):
            error_at(i, pred.code, pred.message, pred.field)
        else:
            answers[i] = _to_json(pred)
    for code in codes:
        state.metrics.item_errors.labels(code).inc()
    headers = {"X-Item-Errors": str(len(codes))} if codes else None
    body = b'{"items":[' + b",".join(answers) + b"]}"
    return Response(body, media_type="application/json", headers=headers)


async def mask(req: MaskRequest, request: Request):
    _check_text(request, req.text, "text")
    masked = await request.app.state.work.run(mask_pii, req.text)
    return MaskResponse(text=masked)


async def model(request: Request):
    _ready_router(request)
    return Response(request.app.state.info, media_type="application/json")


async def healthz(request: Request):
    router = request.app.state.router  # the process answers; the model, once it is loaded
    if router is None:
        return Status(status="ok")
    return Status(status="ok", model=router.name, version=router.version)


async def readyz(request: Request):
    router = _ready_router(request)
    return Status(status="ready", model=router.name, version=router.version)


async def metrics(request: Request):
    m = request.app.state.metrics
    return Response(m.exposition(), headers={"content-type": m.content_type})


def add_routes(app: FastAPI, max_batch: int) -> None:
    """Add the endpoints to ``app`` (this order is the OpenAPI document's)."""
    BatchRequest = batch_request_model(max_batch)  # noqa: N806 - a model class

    async def predict_batch(batch: BatchRequest, request: Request):  # type: ignore[valid-type]
        return await _predict_items(batch.items, request)

    app.add_api_route("/v1/predict", predict, methods=["POST"], response_model=Prediction,
                      responses=ERROR_RESPONSES, summary="Route one complaint")
    app.add_api_route("/v1/predict/batch", predict_batch, methods=["POST"],
                      response_model=BatchResponse, responses=ERROR_RESPONSES,
                      summary="Route several complaints: a Prediction or an error for each, in "
                              "the same order")
    app.add_api_route("/v1/mask-pii", mask, methods=["POST"], response_model=MaskResponse,
                      responses=ERROR_RESPONSES,
                      summary="Mask personal data (NIK, phone, email, plate, bank account, names and "
                              "home addresses after a cue) in a text")
    app.add_api_route("/v1/model", model, methods=["GET"], response_model=ModelInfo,
                      responses={401: ERROR_RESPONSES[401], 503: ERROR_RESPONSES[503]},
                      summary="The loaded model: name, version, labels per task, metrics, limits")
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Status,
                      summary="Liveness: the process answers")
    app.add_api_route("/readyz", readyz, methods=["GET"], response_model=Status,
                      responses={503: ERROR_RESPONSES[503]}, summary="Readiness: the model is loaded")
    app.add_api_route("/metrics", metrics, methods=["GET"], response_class=Response,
                      responses={200: {"content": {"text/plain": {}},
                                       "description": "Prometheus text format"}},
                      summary="Prometheus metrics: requests, latency, in flight, shed, predictions")
