"""The one place that decides what counts as a text (shared by every stage)."""

from __future__ import annotations

import re

from ..errors import InputTypeError, InputValueError

# Characters that take no space. The zero-width space is a word break by definition: it becomes
# a space. The soft hyphen, the zero-width (non-)joiners, the word joiner and the BOM sit inside
# words or numbers ("0812\u20603456"): they vanish. NFKC keeps all of them.
_INVISIBLE_CHARS = "\u00ad\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")


def drop_invisible(text: str) -> str:
    """``text`` with zero-width spaces as spaces and other invisible formatting characters gone."""
    # A few `in` tests (a fast scan in C each) cost a tenth of one regex pass over a text that has
    # none of these characters, which is nearly every text.
    if "\u200b" in text:
        text = text.replace("\u200b", " ")
    if any(c in text for c in _INVISIBLE_CHARS):
        return _INVISIBLE.sub("", text)
    return text


def ensure_text(text: object) -> str:
    """Return ``text`` as ``str``: UTF-8 bytes are decoded, anything else that is not a str is refused.

    ``None`` and numbers raise :class:`InputTypeError` (a programming error on the caller's side);
    bytes that are not valid UTF-8 raise :class:`InputValueError`.
    """
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputValueError(
                f"complaint bytes are not valid UTF-8 (byte {exc.start}); decode them with the "
                "right encoding first"
            ) from None
    raise InputTypeError(f"a complaint text must be str, got {type(text).__name__}")
