"""Classify complaints: topic, responsible agency, the concrete office, and whether a person
should review the decision. Prints one JSON Prediction per complaint on stdout.

TEXT may be '-' to read one complaint per line from stdin (UTF-8; one answer per line: a
Prediction, or for a line that is no complaint, such as a blank one, {"id": null, "error": {...}}
with its code and line number, and exit status 1 at the end). Without --model, the bundled default
model is used (built from the project's corpus on first use, once per version).
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "classify complaints (topic, agency, office, review flag) as JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="complaint text, or '-' for one complaint per line on stdin")
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    p.add_argument("--model-sha256", default=None, metavar="HEX",
                   help="refuse any model but this one: the sha256 of its manifest.json "
                        "(sha256sum MODEL/manifest.json), which lists every other file's sha256")
    p.add_argument("--regency", default=None, help="structured location: kabupaten/kota")
    p.add_argument("--district", default=None, help="structured location: kecamatan")
    p.add_argument("--subdistrict", default=None, help="structured location: kelurahan/desa")
    p.add_argument("--home-region", default=None, metavar="NAME",
                   help="the regency/city the portal serves, e.g. 'Kota Surabaya' (for complaints "
                        "that name no place; default: the model's)")
    p.add_argument("--target-precision", type=float, default=None,
                   help="review thresholds for this precision instead of the model's")
    p.add_argument("--scope", default=None, metavar="CODE",
                   help="an institution's own desk: route only among the agency types under this "
                        "taxonomy code (e.g. kemenimipas, mahkamah_agung, kemenkeu); complaints "
                        "for others get review reason outside_scope")
    p.add_argument("--pretty", action="store_true", help="indented JSON")


def run(args: argparse.Namespace) -> int:
    from ..training.default import ensure_default_model
    from ..router import Router
    from ..errors import InvalidComplaintError
    from ..schemas import Location
    from ._stdin import texts_from

    path = args.model or ensure_default_model(quiet=args.quiet)
    router = Router.load(path, target_precision=args.target_precision, home_region=args.home_region,
                         scope=args.scope, sha256=args.model_sha256)
    location = None
    if args.regency or args.district or args.subdistrict:
        location = Location(regency=args.regency, district=args.district, subdistrict=args.subdistrict)
    refused = 0
    for line, text in enumerate(texts_from(args.text), start=1):  # every stdin line gets its answer
        try:
            p = router.predict({"text": text, "location": location})
        except InvalidComplaintError as exc:  # a blank line, say: an answer in its place
            if args.text != "-":
                raise
            refused += 1
            print(json.dumps({"id": None, "error": {"code": exc.code, "message": exc.message,
                                                    "field": exc.field, "line": line}}, ensure_ascii=False))
            continue
        print(p.model_dump_json(indent=1 if args.pretty else None))
    if refused:
        print(f"lapor-nlp: error: {refused} input line(s) were not complaints (their error objects "
              "are on stdout)", file=sys.stderr)
        return 1
    return 0
