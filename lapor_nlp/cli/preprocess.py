"""Show what each text-pipeline stage makes of a complaint (PII is masked before anything is shown).

Reads TEXT, or one text per line from stdin when TEXT is '-'. Prints each stage's output, or with
--json one JSON object per text (stage name -> output).
"""

from __future__ import annotations

import argparse
import json

HELP = "show each text-pipeline stage's output for a complaint (debugging aid)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="complaint text, or '-' to read one text per line from stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per text on stdout")
    p.add_argument("--no-stem", action="store_true", help="switch the stem stage off")
    p.add_argument("--no-stopwords", action="store_true", help="switch the stopwords stage off")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE",
                   help="extra slang lexicon (informal<TAB>standard); repeatable")


def run(args: argparse.Namespace) -> int:
    from ..text import Preprocessor, mask_pii
    from ._stdin import texts_from

    pre = Preprocessor(stem=not args.no_stem, stopwords=not args.no_stopwords,
                       lexicon_files=args.lexicon)
    for text in texts_from(args.text):
        stages = pre.stages(text)
        if not pre.mask_pii:  # never show raw text: the input line itself is masked too
            stages = {"mask_pii": mask_pii(text), **stages}
        if args.json:
            print(json.dumps(stages, ensure_ascii=False))
            continue
        for name, value in stages.items():
            shown = value if isinstance(value, str) else " ".join(value)
            print(f"{name:>10}: {shown}")
        print(f"{'tokens':>10}: {json.dumps(pre.tokens(text), ensure_ascii=False)}")
    return 0
