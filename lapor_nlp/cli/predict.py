"""Classify complaints: topic, responsible agency, the concrete office, and whether a person
should review the decision. Prints one JSON Prediction per complaint on stdout.

TEXT may be '-' to read one complaint per line from stdin (UTF-8; one Prediction per line,
a blank line included). Without --model, the bundled default
model is used (built from the project's corpus on first use, once per version).
"""

from __future__ import annotations

import argparse

HELP = "classify complaints (topic, agency, office, review flag) as JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="complaint text, or '-' for one complaint per line on stdin")
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
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
    from ..schemas import Complaint, Location
    from ._stdin import texts_from

    path = args.model or ensure_default_model(quiet=args.quiet)
    router = Router.load(path, target_precision=args.target_precision, home_region=args.home_region,
                         scope=args.scope)
    location = None
    if args.regency or args.district or args.subdistrict:
        location = Location(regency=args.regency, district=args.district, subdistrict=args.subdistrict)
    for text in texts_from(args.text):  # every stdin line gets its answer, a blank one too
        p = router.predict(Complaint(text=text, location=location))
        print(p.model_dump_json(indent=1 if args.pretty else None))
    return 0
