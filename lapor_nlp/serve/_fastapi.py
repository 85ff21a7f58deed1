"""The one import of FastAPI, an optional extra: without it, a typed error saying what to install."""

from ..errors import DependencyError

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:
    raise DependencyError(f"lapor_nlp.serve needs FastAPI ({exc.name} is missing): "
                          "pip install 'lapor-nlp[serve]'") from None

__all__ = ["FastAPI", "Request", "RequestValidationError", "Response", "StarletteHTTPException",
           "run_in_threadpool"]
