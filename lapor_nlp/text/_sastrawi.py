"""The plain PySastrawi stemmer, made in one place: the stem stage accelerates and caches it, and
the shipped table of common stems (:mod:`lapor_nlp.text.stem_common`) and the name test of PII
masking ask it directly."""

from __future__ import annotations

from ..errors import DependencyError

_OLD_SASTRAWI_HELP = (
    "the installed 'Sastrawi' package is the abandoned 'sastrawi' 1.0.1 distribution, whose "
    "dictionary is a Python list (about 15 ms per unseen word). Run: pip uninstall -y sastrawi && "
    "pip install 'PySastrawi>=1.2.1'"
)


def create_sastrawi_stemmer():
    """The plain (uncached) PySastrawi stemmer; refuses the old ``sastrawi`` 1.0.1 distribution."""
    try:
        from Sastrawi.Dictionary.ArrayDictionary import ArrayDictionary
        from Sastrawi.Stemmer.Stemmer import Stemmer
        from Sastrawi.Stemmer.StemmerFactory import StemmerFactory
    except ImportError as exc:
        raise DependencyError(
            f"PySastrawi is not installed ({exc}). Run: pip install 'PySastrawi>=1.2.1'"
        ) from None
    if isinstance(ArrayDictionary().words, list):
        raise DependencyError(_OLD_SASTRAWI_HELP)
    return Stemmer(ArrayDictionary(StemmerFactory().get_words()))
