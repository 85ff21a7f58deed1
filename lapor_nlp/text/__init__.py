"""The text pipeline for informal Indonesian complaints.

Stages (each importable and usable alone): :func:`mask_pii`, :func:`clean`, :func:`tokenize`,
:class:`Normalizer`, :class:`StopwordFilter`, :class:`SastrawiStemmer`; composed by
:class:`Preprocessor`.
"""

from .clean import clean, tokenize
from .normalize import Normalizer, load_lexicon
from .pii import PLACEHOLDERS, mask_pii
from .pipeline import PIPE_NAMES, Preprocessor
from .stem import SastrawiStemmer
from .stopwords import KEEP, StopwordFilter

__all__ = [
    "KEEP", "PIPE_NAMES", "PLACEHOLDERS", "Normalizer", "Preprocessor", "SastrawiStemmer",
    "StopwordFilter", "clean", "load_lexicon", "mask_pii", "tokenize",
]
