"""Log formats of the service (``lapor-nlp serve --log-format plain|json``).

``json``: one JSON object per line, for a log shipper. A request's line carries ``request_id``,
``method``, ``route`` (the endpoint, or "other"), ``status`` and ``latency_ms`` as fields (the
gate passes them as the record's extras); other lines carry their message. Nothing here adds to
what is logged: bodies and complaint texts are never in a log record to begin with.
"""

from __future__ import annotations

import json
import logging
import time

#: Extras of a request's log record that become fields of its JSON line.
REQUEST_FIELDS = ("request_id", "method", "route", "status", "latency_ms")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...request fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                       + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name}
        if getattr(record, "request_id", None) is not None:
            out["event"] = "request"
            for name in REQUEST_FIELDS:
                out[name] = getattr(record, name, None)
        else:
            out["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__  # the type only: messages quote input
        return json.dumps(out, ensure_ascii=False)


def log_config(level: str, fmt: str = "plain") -> dict:
    """uvicorn's logging configuration (applied again in every worker process)."""
    lvl = level.upper()
    formatter = ({"()": f"{__name__}.JsonFormatter"} if fmt == "json" else
                 {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            # lapor_nlp.serve writes one line per request (with the request id); uvicorn's own
            # access log would repeat it without the id.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "lapor_nlp": {"handlers": ["stderr"], "level": lvl, "propagate": False},
        },
    }
