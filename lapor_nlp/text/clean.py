"""Stages ``clean`` and ``tokenize``: from raw complaint text to lowercase word tokens.

``clean`` is string to string (easy to look at while debugging); ``tokenize`` splits the cleaned
string. Both are pure functions with no state, so a worker process can use them without setup.
"""

from __future__ import annotations

import html
import re
import unicodedata

from ._input import drop_invisible, ensure_text
from .pii import PLACEHOLDERS

_TAG = re.compile(r"<[^<>]{0,500}>")
# Name parts are bounded to 64 characters (as in pii._EMAIL), so that a long run such as
# "a-a-a-..." costs linear time, not quadratic (2 s for 20,000 characters unbounded).
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w\-]{1,64}\.(?:com|id|net|org|go\.id|co\.id|ly)(?:/\S*)?\b")
_EMAIL = re.compile(r"\b[\w.+\-]{1,64}@[\w\-]+(?:\.[\w\-]+)+")
_MENTION = re.compile(r"@\w+")
# "bangettt" -> "banget": a letter repeated 3+ times is kept once (Indonesian has no triple letters
# and only a few doubled ones, e.g. "saat", "taat", which stay as they are).
_REPEAT = re.compile(r"([a-z])\1{2,}")
# "anak2", "anak²" -> "anak-anak": the chat way of writing reduplication, made Sastrawi's way.
_REDUP = re.compile(r"\b([a-z]{2,})2(?=\b|[a-z])")
# Control characters, lone surrogates and other junk that has no place in a complaint.
_JUNK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_PLACEHOLDER_LOWER = {p.lower(): p for p in PLACEHOLDERS}

#: A token: a placeholder, or letters/digits with inner hyphens ("anak-anak", "ktp-el").
TOKEN_PATTERN = re.compile(r"\[(?:nik|telepon|email|plat|rekening)\]|[a-z0-9]+(?:-[a-z0-9]+)*")


def prepare(text: str) -> str:
    """The text-wide part of :func:`clean`: Unicode NFKC, junk characters, lowercase, HTML.

    These steps can change or span whitespace (NFKC turns a no-break space into a space, a tag
    can hold spaces), so they run on the whole text before it is split into chunks.
    """
    text = ensure_text(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", drop_invisible(text))
        text = _JUNK.sub(" ", text)
    text = text.lower()
    if "<" in text or "&" in text:
        text = _TAG.sub(" ", text)
        if "&" in text:
            text = html.unescape(text)
    return text


def prepare_normalized(text: str) -> str:
    """:func:`prepare` of a non-ASCII text, given ``NFKC(drop_invisible(text))`` (what
    ``pii._mask_numbers_nfkc`` hands on): normalising is most of ``prepare``'s cost (9 us of
    16 for a mojibake complaint), and the router's fast path has already done it once."""
    text = _JUNK.sub(" ", text).lower()
    if "<" in text or "&" in text:
        text = _TAG.sub(" ", text)
        if "&" in text:
            text = html.unescape(text)
    return text


def clean(text: str) -> str:
    """Normalise Unicode (NFKC), lowercase, drop HTML, URLs, emails, @mentions, '#', emoji and junk.

    Letters repeated three or more times are collapsed ("bangettt" -> "banget") and chat-style
    reduplication is written out ("anak2" -> "anak-anak"). Emoji, '#' and punctuation are not
    removed here one by one: :func:`tokenize` keeps only letters and digits, so they fall away.
    Everything after :func:`prepare` acts within whitespace-separated chunks.
    """
    return clean_prepared(prepare(text))


def clean_prepared(text: str) -> str:
    """:func:`clean` for a text (or one chunk of it) that :func:`prepare` has already handled.
    Preparing twice is not a no-op: ``&amp;lt;b&amp;gt;`` unescapes to ``<b>`` the second time,
    and that tag would then be dropped; the Preprocessor prepares each text once."""
    if "@" in text:
        text = _EMAIL.sub(" ", text)
        text = _MENTION.sub(" ", text)
    if "http" in text or "www" in text or ".com" in text or ".id" in text:
        text = _URL.sub(" ", text)
    # Searched first: a sub with a template calls back into Python's re module each time (1.6 us
    # a chunk against 0.4 for the search), and nearly no chunk has a match.
    if _REPEAT.search(text):
        text = _REPEAT.sub(r"\1", text)
    if "2" in text and _REDUP.search(text):
        text = _REDUP.sub(r"\1-\1", text)
    return text


def tokenize(text: str) -> list[str]:
    """Split cleaned text into tokens; placeholders such as ``[NIK]`` stay single tokens.

    Punctuation glued to words ("rusak.tolong", "jl.kenanga") separates them. A hyphenated token is
    kept whole only when it is a reduplication ("anak-anak", "anak-anaknya", which the stemmer
    reduces to "anak"); otherwise its parts become tokens ("ktp-el" -> "ktp", "el").
    """
    out: list[str] = []
    for tok in TOKEN_PATTERN.findall(ensure_text(text)):
        out.extend(split_token(tok))
    return out


def split_token(tok: str) -> tuple[str, ...]:
    """Tokens that one raw token stands for (see :func:`tokenize`); placeholders are restored."""
    if tok[0] == "[":
        return (_PLACEHOLDER_LOWER[tok],)
    if "-" not in tok:
        return (tok,)
    parts = tok.split("-")
    if len(parts) == 2 and parts[0] and parts[1].startswith(parts[0]):
        return (tok,)
    return tuple(p for p in parts if p)
