"""``POST /v1/feedback``: an operator's correction of a prediction, into the feedback database
(:mod:`lapor_nlp.feedback`).

It passes the same gate as every endpoint (API key, body size, JSON only; not the work limits:
``--max-concurrency`` and ``--queue-timeout`` shed predictions, not corrections). ``who`` is
required (the audit trail names a person); ``when`` defaults to the time of receipt. A corrected
topic or agency must be one of the serving model's labels (else 422, ``field``
``corrected.agency``). The store is opened on
the first correction (a service that never receives one creates no file) at the path given to
:func:`~lapor_nlp.serve.create_app`, else ``LAPOR_NLP_FEEDBACK_DB``, else the user data directory.
The endpoint is a plain function, so FastAPI runs it in its thread pool: a commit's fsync never
holds up the event loop, and concurrent corrections wait for each other in SQLite's lock.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time.
import threading
from pathlib import Path

from pydantic import BaseModel, Field

from ..feedback import Feedback, FeedbackConflictError, FeedbackStore
from ._fastapi import FastAPI, Request, Response
from .errors import ApiError
from .models import ERROR_RESPONSES, ErrorResponse
from .routes import _ready_router


class FeedbackReceipt(BaseModel):
    id: str
    version: int
    stored: bool = Field(..., description="true: stored now (201); false: this (id, version) was "
                                          "already stored with the same content (200)")


def add_feedback_route(app: FastAPI, db_path: str | Path | None = None) -> None:
    """Add ``POST /v1/feedback`` to ``app``, storing into ``db_path`` (see the module docstring)."""
    lock = threading.Lock()
    app.state.feedback_store = None

    def store() -> FeedbackStore:
        with lock:
            if app.state.feedback_store is None:
                app.state.feedback_store = FeedbackStore(db_path)
            return app.state.feedback_store

    def feedback(item: Feedback, request: Request, response: Response) -> FeedbackReceipt:
        router = _ready_router(request)  # its labels check the correction
        try:
            stored = store().add(item, labels=router.labels)
        except FeedbackConflictError as exc:
            raise ApiError(409, "feedback_conflict", exc.message, field="version") from None
        response.status_code = 201 if stored else 200
        return FeedbackReceipt(id=item.id, version=item.version, stored=stored)

    app.add_api_route("/v1/feedback", feedback, methods=["POST"], response_model=FeedbackReceipt,
                      status_code=201,
                      responses={**ERROR_RESPONSES,
                                 503: {"model": ErrorResponse, "description": "model not loaded "
                                       "yet (not_ready): its labels check the correction"},
                                 200: {"model": FeedbackReceipt, "description": "already stored"},
                                 409: {"model": ErrorResponse, "description": "this (id, version) "
                                       "holds another correction: send the next version"}},
                      summary="Store an operator's correction of a prediction (idempotent on id and version)")
