"""The request and response bodies of the HTTP API, as they appear in the OpenAPI document.

Predictions are the Python API's own :class:`~lapor_nlp.schemas.Complaint` and
:class:`~lapor_nlp.schemas.Prediction`; what is here wraps them (batches), answers the other
endpoints, and describes the error body.
"""

# No `from __future__ import annotations`: pydantic and FastAPI read these annotations at run time.
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, field_validator
from pydantic_core import PydanticCustomError

from ..schemas import Prediction, text_problem, text_problem_message


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

    @field_validator("text")
    @classmethod
    def _valid_unicode(cls, v):
        # The complaint's rule (lapor_nlp.schemas.text_problem): a lone surrogate cannot be
        # written back as JSON, so it is refused here (422) as /v1/predict refuses it, instead of
        # failing when the answer is serialised (a 500). Empty text is fine to mask.
        # Its own error type (as in Complaint), so the answer carries the library's code.
        problem = text_problem(v, required=False)
        if problem is not None:
            raise PydanticCustomError(problem, text_problem_message(problem))
        return v


class MaskResponse(BaseModel):
    text: str = Field(..., description="the text with NIK, phone numbers, emails, plates and bank "
                                       "accounts replaced by [NIK], [TELEPON], [EMAIL], [PLAT], "
                                       "[REKENING]")


class ItemErrorInfo(BaseModel):
    code: str = Field(..., description="the library's code ('LAPOR-E###') or 'text_too_long', "
                                       "'invalid_request'")
    message: str
    field: str | None = Field(None, description="the failing field, dotted (e.g. 'items.3.text')")
    index: int = Field(..., description="the item's position in the request")


class ItemError(BaseModel):
    """What stands in a batch answer at the position of an item that could not be routed."""

    id: str | None = Field(None, description="the item's id, when it had a usable one")
    error: ItemErrorInfo


class BatchResponse(BaseModel):
    items: list[Prediction | ItemError] = Field(..., description="one entry per item, in order: a "
                                                                 "Prediction, or an ItemError")


#: A batch item as the OpenAPI document shows it (a Complaint), validated per item by the router
#: so that one bad item is answered at its position instead of failing the whole batch.
_BatchItem = Annotated[Any, WithJsonSchema({"$ref": "#/components/schemas/Complaint"})]


def batch_request_model(max_batch: int) -> type[BaseModel]:
    """``{"items": [Complaint, ...]}`` with at most ``max_batch`` items: a model per app, because
    the limit is a setting and belongs in the schema (validation and the OpenAPI document)."""
    return create_model(
        "BatchRequest", __config__=ConfigDict(extra="forbid"),
        items=(list[_BatchItem], Field(..., max_length=max_batch,
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
    408: {"model": ErrorResponse, "description": "the body did not arrive in time"},
    503: {"model": ErrorResponse, "description": "model not loaded yet (not_ready), or the server "
                                                  "is at a load limit (overloaded; see Retry-After)"},
}
