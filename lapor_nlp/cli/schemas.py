"""Print the JSON Schema of the request and response models (Complaint, Prediction) on stdout, for
clients written in other languages; the HTTP service publishes the same in /openapi.json."""

from __future__ import annotations

import argparse
import json

HELP = "print the JSON Schema of Complaint and Prediction"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--indent", type=int, default=1, help="JSON indentation (default: 1)")


def run(args: argparse.Namespace) -> int:
    from ..schemas import json_schemas

    print(json.dumps(json_schemas(), indent=args.indent))
    return 0
