"""The request and response bodies of the HTTP API, as they appear in the OpenAPI document.

Predictions are the Python API's own :class:`~lapor_nlp.schemas.Complaint` and
:class:`~lapor_nlp.schemas.Prediction`; what is here wraps them (batches), answers the other
endpoints, and describes the error body.
"""

# No `from __future__ import annotations`: pydantic and FastAPI read these annotations at run time.
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..schemas import Complaint, Prediction


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    type: str


class ErrorInfo(BaseModel):
    code: str = Field(..., description="stable error code: 'malformed_json', 'invalid_request', "
                                       "'batch_too_large', 'text_too_long', 'payload_too_large', "
                                       "'unauthorized', 'not_ready', 'internal_error', ... or a "
                                       "library code 'LAPOR-E###'")
    message: str
    field: str | None = Field(None, description="the failing field, dotted (e.g. 'items.3.text')")
    request_id: str | None = None
    details: list[ErrorDetail] | None = Field(None, description="every schema error, when several")


class ErrorResponse(BaseModel):
    error: ErrorInfo


class MaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., examples=["hubungi saya di 0812-3456-7890"])


class MaskResponse(BaseModel):
    text: str = Field(..., description="the text with NIK, phone numbers, emails, plates and bank "
                                       "accounts replaced by [NIK], [TELEPON], [EMAIL], [PLAT], "
                                       "[REKENING]")


class BatchResponse(BaseModel):
    items: list[Prediction]


def batch_request_model(max_batch: int) -> type[BaseModel]:
    """``{"items": [Complaint, ...]}`` with at most ``max_batch`` items: a model per app, because
    the limit is a setting and belongs in the schema (validation and the OpenAPI document)."""
    return create_model(
        "BatchRequest", __config__=ConfigDict(extra="forbid"),
        items=(list[Complaint], Field(..., max_length=max_batch,
                                      description=f"at most {max_batch} complaints")))


class ModelInfo(BaseModel):
    name: str
    version: str = Field(..., description="library version + model file hash prefix")
    lapor_nlp_version: str = Field(..., description="version of the library serving the model")
    created: str | None = None
    labels: dict[str, list[str]] = Field(..., description="labels per task")
    label_names: dict[str, dict[str, str]] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict, description="held-out metrics from the "
                                                                      "manifest")
    limits: dict[str, int]


class Status(BaseModel):
    status: str
    model: str | None = None
    version: str | None = None


#: The error answers each endpoint documents in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed JSON"},
    401: {"model": ErrorResponse, "description": "missing or wrong X-API-Key (when auth is on)"},
    413: {"model": ErrorResponse, "description": "request body over the size limit"},
    415: {"model": ErrorResponse, "description": "Content-Type is not application/json"},
    422: {"model": ErrorResponse, "description": "schema error, batch or text over its limit"},
    500: {"model": ErrorResponse, "description": "internal error (generic message + request id)"},
    503: {"model": ErrorResponse, "description": "model not loaded yet"},
}
