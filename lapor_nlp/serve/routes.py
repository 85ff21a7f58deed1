"""The endpoints: what each path answers once the gate has let the request through.

They read the app's loaded model and limits from ``request.app.state`` (set by
:func:`lapor_nlp.serve.create_app` and the model lifespan), and raise
:class:`~lapor_nlp.serve.errors.ApiError` for the error handlers to answer.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time,
# and the batch endpoint's request model is made per app (its max_length is a setting).
from ..schemas import Complaint, Prediction
from ..text.pii import mask_pii
from ._fastapi import FastAPI, Request, Response, run_in_threadpool
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


def _check_text(request: Request, text: str, field: str) -> None:
    """Refused, never silently truncated."""
    limit = request.app.state.limits["max_text_chars"]
    if len(text) > limit:
        raise ApiError(422, "text_too_long",
                       f"{field} has {len(text)} characters; the limit is {limit}", field=field)


async def predict(complaint: Complaint, request: Request):
    router = _ready_router(request)
    _check_text(request, complaint.text, "text")
    return Response(_to_json(router.predict(complaint)), media_type="application/json")


async def _predict_items(items: list[Complaint], request: Request) -> Response:
    router = _ready_router(request)
    for i, c in enumerate(items):
        _check_text(request, c.text, f"items.{i}.text")
    if len(items) <= 4:
        preds = router.predict_batch(items)
    else:  # keep the event loop answering probes while a big batch runs
        preds = await run_in_threadpool(router.predict_batch, items)
    body = b'{"items":[' + b",".join(_to_json(p) for p in preds) + b"]}"
    return Response(body, media_type="application/json")


async def mask(req: MaskRequest, request: Request):
    _check_text(request, req.text, "text")
    return MaskResponse(text=mask_pii(req.text))


async def model(request: Request):
    _ready_router(request)
    return Response(request.app.state.info, media_type="application/json")


async def healthz():
    return Status(status="ok")


async def readyz(request: Request):
    router = _ready_router(request)
    return Status(status="ready", model=router.name, version=router.version)


def add_routes(app: FastAPI, max_batch: int) -> None:
    """Add the endpoints to ``app`` (this order is the OpenAPI document's)."""
    BatchRequest = batch_request_model(max_batch)  # noqa: N806 - a model class

    async def predict_batch(batch: BatchRequest, request: Request):  # type: ignore[valid-type]
        return await _predict_items(batch.items, request)

    app.add_api_route("/v1/predict", predict, methods=["POST"], response_model=Prediction,
                      responses=ERROR_RESPONSES, summary="Route one complaint")
    app.add_api_route("/v1/predict/batch", predict_batch, methods=["POST"],
                      response_model=BatchResponse, responses=ERROR_RESPONSES,
                      summary="Route several complaints (answers in the same order)")
    app.add_api_route("/v1/mask-pii", mask, methods=["POST"], response_model=MaskResponse,
                      responses=ERROR_RESPONSES,
                      summary="Mask personal data (NIK, phone, email, plate, bank account) in a text")
    app.add_api_route("/v1/model", model, methods=["GET"], response_model=ModelInfo,
                      responses={401: ERROR_RESPONSES[401], 503: ERROR_RESPONSES[503]},
                      summary="The loaded model: name, version, labels per task, metrics, limits")
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Status,
                      summary="Liveness: the process answers")
    app.add_api_route("/readyz", readyz, methods=["GET"], response_model=Status,
                      responses={503: ERROR_RESPONSES[503]}, summary="Readiness: the model is loaded")
