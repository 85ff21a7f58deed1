"""``lapor-nlp`` command line: one module per verb, each a thin wrapper over an importable function.

Conventions: data goes to stdout, messages and progress to stderr; exit codes are 0 (success),
1 (the work failed: bad data, a check did not pass), 2 (bad usage), 130 (interrupted).
"""

from __future__ import annotations

import argparse
import logging
import sys

from .._version import __version__
from ..errors import LaporError

VERBS = ("predict", "preprocess", "train", "evaluate", "compare", "audit", "feedback", "classify", "serve", "schemas")


def build_parser(verbs: tuple[str, ...] = VERBS) -> argparse.ArgumentParser:
    """The whole command line; only the ``verbs`` named get their arguments (``main`` names the
    one being run: a verb's arguments may import what that verb needs, such as the training
    side for ``compare``, which ``classify`` and ``--help`` should not wait for)."""
    parser = argparse.ArgumentParser(
        prog="lapor-nlp",
        description="Classify Indonesian public-service complaints by topic and responsible agency.",
    )
    parser.add_argument("--version", action="version", version=f"lapor-nlp {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or messages on stderr")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    import importlib

    for verb in VERBS:
        module = importlib.import_module(f".{verb}", __name__)
        p = sub.add_parser(verb, help=module.HELP, description=module.__doc__)
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress or messages on stderr")
        if verb in verbs:
            module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The verb is the first word that is not an option (the options before it take no value).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser((chosen,) if chosen in VERBS else ())
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.INFO,  # -q: errors only
        format="lapor-nlp: %(message)s",
        stream=sys.stderr,
    )
    # Library warnings (scikit-learn's, say) are log messages too: shown normally, silenced by -q.
    logging.captureWarnings(True)
    try:
        return int(args.run(args) or 0)
    except LaporError as exc:  # no traceback: the code and the message say it all (one line, but
        print(f"lapor-nlp: error: {exc}", file=sys.stderr)  # a data check's list of bad rows)
        return 1
    except KeyboardInterrupt:
        print("lapor-nlp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
