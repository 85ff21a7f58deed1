"""Stage ``mask_pii``: replace personal data with typed placeholders.

Complaints carry NIK/KK numbers, phone numbers, emails, vehicle plates and bank accounts. Services
call :func:`mask_pii` before they store or log a text, and the :class:`~lapor_nlp.text.Preprocessor`
runs it first, on the raw text, because the later stages (lowercasing, punctuation splitting,
dropping digits) would otherwise break the very numbers this stage must recognise.

Placeholders are ``[NIK]``, ``[TELEPON]``, ``[EMAIL]``, ``[PLAT]``, ``[REKENING]``; the tokenizer
keeps each as one token.

How: one cheap scan finds each run of digits (with the spaces, dots, dashes and brackets people put
inside numbers), and each run is judged by its digit count, its first digits and a few characters
of context (a "rekening" cue before it, a plate region code around it). A single large regex with
look-behinds at every position was 20 times slower and harder to read.

Privacy comes first: an unrecognised run of 12 or more digits (a BPJS card, a customer number) is
masked as ``[NIK]`` rather than left in the text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ._input import drop_invisible, ensure_text

PLACEHOLDERS = ("[NIK]", "[TELEPON]", "[EMAIL]", "[PLAT]", "[REKENING]")
#: What ``mask_pii(text, people=True)`` puts in place of a name and of a home address.
PEOPLE_PLACEHOLDERS = ("[NAMA]", "[ALAMAT]")

# Region codes of Indonesian vehicle plates (Korlantas); a plate needs one, so that "RT 03 RW" or
# "no 11 a" are not taken for plates.
PLATE_PREFIXES = frozenset(
    "a b d e f g h k l m n p r s t w z aa ab ad ae ag ba bb bd be bg bh bk bl bm bn bp da db dd de "
    "dg dh dk dl dm dn dr dt dw ea eb ed kb kh kt ku pa pb pg pt py ds".split()
)
# "b 2 kg", "s 1 th": measurements and abbreviations, not plate suffixes.
_NOT_PLATE_SUFFIX = frozenset(
    "kg km cm mm m rb jt hr th thn rt rw no x jam gr lt kw ons mg ml org km2 bln mgg".split()
)

# The local part is bounded to 64 characters (the most an address may have): unbounded, a long
# run with an "@" but no domain after it is re-scanned from each of its characters (quadratic:
# 0.5 s for 20,000 characters, a denial of service for a service that masks what it receives).
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_RUN = re.compile(r"\d[\d().\- ]*\d|\d")
# The same runs in an ASCII text, where \d is [0-9]: the class is tested faster than \d's Unicode
# category (4.1 us against 5.7 for a Surabaya complaint with digits).
_RUN_ASCII = re.compile(r"[0-9][0-9().\- ]*[0-9]|[0-9]")
_DIGIT_FLAG = bytes(48 <= b <= 57 for b in range(256))  # byte -> 1 for 0-9
# "rekening BCA a.n. Budi Santoso nomor 1234567890": the cue may be a bank and a name away.
_REK_CUE = re.compile(r"(?:\b|(?<=\\n))(?:rekening|rek|norek)\b[^\d\n]{0,45}$", re.IGNORECASE)
# An identity number named as such: "NISN : 0012345678" (10 digits), "NIP", "NPWP", "no KTP".
# A cue starts a word, or follows a literal "\n" (exports that escaped their line breaks).
_ID_CUE = re.compile(r"(?:\b|(?<=\\n))(?:nisn|nis|nik|nkk|kk|ktp|npwp|bpjs|kis|kip|nip|nrp|nomor induk)\b[^\d\n]{0,15}$",
                     re.IGNORECASE)
_CONTEXT = 60  # characters before a run that its classification reads
# A plate's parts may be joined by spaces or by nothing ("L 1234 AB", "B1234XYZ"), or by the same
# dash or dot on both sides ("B-1234-XYZ", "L.1234.AB"); one dash or dot alone is something else
# ("1.Ada ..." in a numbered list, "blok A-12").
_PLATE_BEFORE = re.compile(r"(?:^|[^A-Za-z0-9])([A-Za-z]{1,2})([ .\-]?)$")
_PLATE_AFTER = re.compile(r"^([ .\-]?)([A-Za-z]{1,3})(?![A-Za-z0-9])")
_ONLY_DIGITS = str.maketrans("", "", "().- ")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LOCAL_PART_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_LATER_GROUP = re.compile(r"(?<=[().\- ])\d")  # a group of digits after a separator inside a run
# Hyphens, figure/en/em dashes and the minus sign, as people type them inside numbers (a regex
# and not str.translate: translate looks every character of a non-ASCII text up in a dict, 30 us
# for a complaint).
_DASH_CHARS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_DASHES = re.compile(f"[{_DASH_CHARS}]")


def _classify(run: str, n: int, digits: str, before: str) -> str | None:
    if n == 16:
        return "[NIK]"
    if (digits.startswith("08") and 10 <= n <= 13) or (digits.startswith("628") and 11 <= n <= 14) \
            or (digits.startswith("8") and 9 <= n <= 12 and digits[1] != "0"):
        return "[TELEPON]"
    if 7 <= n <= 20 and _REK_CUE.search(before):
        return "[REKENING]"
    if 9 <= n <= 20 and _ID_CUE.search(before):  # 9+: not a date (12.03.2022)
        return "[NIK]"
    if digits.startswith("0") and 9 <= n <= 12 and digits[1] != "0":
        return "[TELEPON]"  # landline: (031) 567 8910, 021-1234-5678, 031.567.8910, 0215551234
    if run.startswith("+") and digits.startswith("62") and 9 <= n <= 13:
        return "[TELEPON]"  # a landline written internationally: +62 31 5678910
    if n >= 12:
        return "[NIK]"
    return None


def mask_pii(text: str, *, people: bool = True) -> str:
    """Return ``text`` with NIK/KK, phone numbers, emails, plates and bank accounts masked, and
    (``people``, the default) the personal names and home addresses that a cue introduces
    ([NAMA], [ALAMAT]: see ``_people_spans``).

    >>> mask_pii("hub 0812-3456-7890 atau email budi@contoh.id")
    'hub [TELEPON] atau email [EMAIL]'
    >>> mask_pii("Nama : Slamet Budiono, alamat KTP : Jl. Jojoran Baru No.16")
    'Nama : [NAMA], alamat KTP : [ALAMAT]'

    Reports, logs and anything a person reads use the default. The routing pipeline passes
    ``people=False`` (the :class:`~lapor_nlp.text.Preprocessor` masks numbers only): the words of a
    street are what the gazetteer reads to find the office, and a model never stores a text.

    Non-``str`` input raises :class:`~lapor_nlp.errors.InputTypeError`; bytes must be UTF-8.
    """
    masked = _mask_numbers(text)
    return _mask_people(masked) if people else masked


def _mask_numbers(text: str) -> str:
    return _mask_numbers_nfkc(text)[0]


_DIGIT_OR_AT = bytes(48 <= b <= 57 or b == 64 for b in range(256))  # byte -> 1 for 0-9 and "@"


def _may_change(text: str) -> bool:
    """False when ``_mask_numbers(text)`` is ``text``: an ASCII text with no digit and no "@"
    (every number rule starts at a digit or an "@", and only a non-ASCII text is normalised).
    The answer of ``pipeline.may_hold_pii``, by a byte table and a C scan: 0.34 us for a
    complaint against 0.8 for its regex (the router asks it of every text of a batch)."""
    return not text.isascii() or 1 in text.encode("ascii").translate(_DIGIT_OR_AT)


def _mask_numbers_nfkc(text: str) -> tuple[str, str | None]:
    """(``_mask_numbers(text)``, and when that is the text as given and the text is not ASCII,
    ``NFKC(drop_invisible(text))``, else None). The normal form is what ``clean.prepare`` computes
    first: the router's fast path hands it on instead of normalising the text a second time."""
    text = original = ensure_text(text)
    if not text.isascii():
        # Full-width digits and other compatibility forms, and invisible characters inside a
        # number, would hide it from the scan.
        text = unicodedata.normalize("NFKC", drop_invisible(text))
    emails = 0
    if "@" in text:
        text, emails = _mask_emails(text)
    # Numbers are looked for in `scan`, which has Unicode dashes as "-" ("0812\u20133456\u20137890");
    # one character for one, so its positions are the text's, and the text between the masks is
    # given back as it was (its dashes untouched, so that the rest of the pipeline sees the same
    # words whether or not a number was masked).
    scan = _DASHES.sub("-", text) if not text.isascii() and _DASHES.search(text) else text
    pieces: list[str] = []
    last = 0
    for m in (_ascii_runs(scan) if scan.isascii() else _RUN.finditer(scan)):
        start, end = m.span()
        run = m.group()
        if run.isdigit():
            if len(run) <= 4:
                # Only a plate can be this short; it needs a letter just before ("L 1234", "B1234").
                if start and (scan[start - 1].isalpha() or (start > 1 and scan[start - 2].isalpha())):
                    plate = _plate_span(scan, start, end, last)
                    if plate is not None:
                        pieces += (text[last:plate[0]], "[PLAT]")
                        last = plate[1]
                continue
            digits = run
        else:
            run = run.rstrip("(. -")
            end = start + len(run)
            digits = run.translate(_ONLY_DIGITS)
        # A leading "+62" or "(031)" belongs to the number.
        if start > last and scan[start - 1] in "+(":
            start -= 1
            run = scan[start] + run
        elif start > last + 1 and scan[start - 1] == " " and scan[start - 2] == "+":
            start -= 2
            run = "+ " + run
        label = _classify(run, len(digits), digits, scan[max(last, start - _CONTEXT):start])
        if label is None and len(digits) > 7:
            # "no 5 0812345678", "kamar 5-0812345678": a short number joined to a phone number by
            # a separator makes one run; read the run again from each later group of digits.
            for g in _LATER_GROUP.finditer(run):
                tail = run[g.start():]
                tail_digits = tail.translate(_ONLY_DIGITS)
                at = start + g.start()
                label = _classify(tail, len(tail_digits), tail_digits, scan[max(last, at - _CONTEXT):at])
                if label is not None:
                    start = at
                    break
        if label is not None:
            pieces += (text[last:start], label)
            last = end
    if not pieces:
        # Nothing else found: a text with no PII comes back exactly as it was given.
        if emails:
            return text, None
        return original, (None if original.isascii() else text)
    pieces.append(text[last:])
    return "".join(pieces), None


def _ascii_runs(scan: str):
    """``_RUN_ASCII.finditer(scan)``, each match tried only where a digit is: a run starts at a
    digit, and the first digit after a match is where finditer's next match starts. Jumping there
    (a byte table and ``bytes.find``, in C) instead of letting the regex try every position costs
    1.7 us against 2.8 for a 450-character backlog row with digits."""
    flags = scan.encode("ascii").translate(_DIGIT_FLAG)
    match = _RUN_ASCII.match
    pos = flags.find(1)
    while pos >= 0:
        m = match(scan, pos)
        yield m
        pos = flags.find(1, m.end())


def _mask_emails(text: str) -> tuple[str, int]:
    """(text with emails masked, how many). A local part longer than the pattern's 64 characters
    is masked whole: the match is extended back over the address characters before it."""
    pieces: list[str] = []
    last = 0
    for m in _EMAIL.finditer(text):
        start = m.start()
        while start > last and text[start - 1] in _LOCAL_PART_CHARS:
            start -= 1
        pieces += (text[last:start], "[EMAIL]")
        last = m.end()
    if not pieces:
        return text, 0
    pieces.append(text[last:])
    return "".join(pieces), len(pieces) // 2


def _plate_span(text: str, start: int, end: int, floor: int) -> tuple[int, int] | None:
    """(start, end) of a plate around the digits at text[start:end], or None."""
    # First the cheap refusal of nearly every call ("RT 03", "jam 10"): the letters _PLATE_BEFORE
    # would take are the run of ASCII letters that ends at the digits (or one separator before
    # them; a newline just before the digits is passed over, as its `$` is), whole (a letter or
    # digit before them fails its boundary); a run of none, of three or more, or not a plate's
    # prefix, cannot give a plate. (1.3 us a call for the search.)
    stop = start - 1 if start > floor and text[start - 1] == "\n" else start  # `$` matches before it
    e = stop - 1 if stop > floor and text[stop - 1] in " .-" else stop
    k = e
    while k > e - 3 and k > 0 and text[k - 1] in _ASCII_LETTERS:
        k -= 1
    if k == e or k == e - 3 or text[k:e].lower() not in PLATE_PREFIXES:
        return None
    return _plate_span_by_pattern(text, start, end, floor)


def _plate_span_by_pattern(text: str, start: int, end: int, floor: int) -> tuple[int, int] | None:
    """:func:`_plate_span` by the patterns alone (what its quick refusal must agree with)."""
    before = _PLATE_BEFORE.search(text, max(floor, start - 4), start)
    if before is None or before.group(1).lower() not in PLATE_PREFIXES:
        return None
    after = _PLATE_AFTER.match(text[end:end + 5])
    if after is None or after.group(2).lower() in _NOT_PLATE_SUFFIX:
        return None
    joins = before.group(2), after.group(1)
    if end - start < 3 and joins != (" ", " "):
        return None  # one or two digits glued to letters are abbreviations ("K3", "S1", "BP3MI")
    if (joins[0] not in ("", " ") or joins[1] not in ("", " ")) and (joins[0] != joins[1] or end - start < 3):
        return None  # dashes or dots: the same on both sides, around 3-4 digits ("blok F.12.A" is not)
    return before.start(1), end + after.end()



# -- names and street addresses ---------------------------------------------------------------------
# A person's name or home address is recognised only where a cue introduces it: a name after
# "nama"/"atas nama"/"a.n." or a form of address ("Bapak", "Bu", "Sdr."), an address after
# "alamat", a street with a house number ("Jl. Jojoran Baru No. 16"), an "RT 03 RW 05". Without a
# cue a capitalised word is as likely a place, an office or the first word of a sentence, and the
# place is what a reader of a report needs. A street named without a house number ("Jl. Raya Darmo
# berlubang") is a public place, the subject of the complaint: it stays.
_RELATIVE = r"(?:ibu|bapak|ayah|suami|istri|anak|kakak|adik|kakek|nenek|mertua|orang\s+tua|almarhum|alm)"
# A strong cue ("nama saya", "Nama :", "atas nama", "a.n.") is followed by a name even when it is
# written in lower case; a bare "nama" only by a capitalised or unknown word ("nama baik").
_STRONG_NAME_CUE = re.compile(
    r"(?i:\b(?:atas\s+nama|a\s?\.\s?n\s?\.|a\s?/\s?n\b|namanya|(?:pelapor|pemohon)\s*[:=\-]|"
    r"nama(?:\s+(?:saya|lengkap|pelapor|pemohon|" + _RELATIVE
    + r"(?:\s+(?:saya|kami))?))?\s*[:=\-]|nama\s+(?:saya|lengkap|pelapor|pemohon|" + _RELATIVE
    + r"(?:\s+(?:saya|kami))?))(?:\s*[:=\-])?\s*(?:(?:bapak|bpk|ibu|sdr|sdri)\.?\s+)?)")
_WEAK_NAME_CUE = re.compile(r"(?i:\bnama\s+)")
_HONORIFIC = re.compile(r"\b(?:[Bb]apak|BAPAK|[Bb]pk|[Pp]ak|[Ii]bu|IBU|[Bb]u|[Ss]dri?|[Ss]audara|[Ss]audari|"
                        r"[Mm]bak|[Mm]as)\.?\s+(?=[A-Z])")
_ADDRESS_CUE = re.compile(r"(?i:\balamat(?:\s+(?:ktp|kk|rumah|saya|kami|domisili|tinggal|lengkap|asal|"
                          r"baru|lama|sekarang|sesuai\s+ktp))*(?:\s*[:=\-]\s*|\s+)(?:di\s+)?)")
_STREET_WITH_NO = re.compile(r"(?i:\b(?:jl|jln|jalan|gg|gang)\b\.?[^\S\n]*[^\n.;,!?]{1,40}?\b(?:no|nomor|nmr)\b"
                             r"[^\S\n]*\.?[^\S\n]*:?[^\S\n]*\d+[a-z]?(?:[^\S\n]*[-/][^\S\n]*\d+[a-z]?)?)")
# "Jl. Kenanga 5", "Gg. Mawar III 12": an abbreviated street, a capitalised name and a bare number
# (a house number). Only the abbreviations: "jalan rusak 3 bulan" is a road, not an address.
_STREET_BARE_NO = re.compile(r"\b(?:[Jj][Ll][Nn]?|JLN|[Gg][Gg])\.?[^\S\n]*[A-Z][A-Za-z'\-]*"
                             r"(?:[^\S\n]+[A-Z][A-Za-z'\-]*){0,3}[^\S\n]+\d{1,4}[A-Za-z]?\b")
_HOUSE_NO = re.compile(r"(?i:\s*,?\s*(?:no|nomor|nmr)\b\s*\.?\s*:?\s*\d+[a-z]?(?:\s*[-/]\s*\d+[a-z]?)?)")
_RT_RW = re.compile(r"(?i:\brt\s*\.?\s*:?\s*\d{1,3}\s*(?:[/,\-]|\s)\s*(?:rw\s*\.?\s*:?\s*)?\d{1,3}\b)")
_TOKEN = re.compile(r"\\n|\n|[A-Za-z][A-Za-z'\-]*|\d+[A-Za-z]?|[^\sA-Za-z\d]")
# Words that end a name: titles and offices ("Bapak Walikota", "Ibu Kepala Dinas"), places,
# document names and the words a sentence goes on with.
_NOT_NAME = frozenset("""
kepala dinas walikota wali wakil lurah camat bupati gubernur presiden menteri direktur kota kabupaten
rt rw kades sekretaris sekda ketua pejabat petugas polisi satpol kapolsek kapolres dokter guru
kelurahan kecamatan desa pemkot pemerintah yth yang saya kami untuk dengan di ke dari mohon
tolong terima kasih ktp kk nik npwp bpjs sim stnk akta surat no nomor jl jln jalan gg gang tidak
sudah belum akan bisa agar atau tapi juga ini itu sebagai selaku pada nya adalah dll lagi sdh tdk
yg dgn utk bukan hanya masih sedang telah pun selamat pagi siang sore malam assalamualaikum
warga pelapor pemohon bersama beserta alamat telp telepon hp wa hub email umur usia lahir tanggal
kantor bank puskesmas rumah sakit rs sekolah smp sma sd universitas pt cv tbk persero mau ingin
minta tanya sekeluarga dkk bin binti suami istri anak kakek nenek ayah ibu bapak adik kakak
mertua orang tua kandung almarhum alm kelas salah wajib
""".split())
# What an address is made of after its cue: capitalised or unknown words, numbers, the words of
# street addresses and their abbreviations (a full stop after one does not end the address).
_ADDRESS_WORDS = frozenset("""
no nomor nmr rt rw gg gang blok kav kavling jl jln jalan raya baru barat timur utara selatan tengah
dalam lor kidul wetan kulon perum perumahan komplek kompleks dusun dsn desa kampung kp kel kec
kelurahan kecamatan kab kabupaten kota tanah besar kecil indah permai asri griya villa regency
""".split())
_ABBREVIATIONS = frozenset("no jl jln gg kel kec rt rw kab ds dsn kp blok kav perum".split())
_MAX_NAME_WORDS = 4
_MAX_ADDRESS_CHARS = 90


def _name_end(text: str, start: int, *, lower_ok: bool, capitalised_only: bool = False) -> int:
    """End of the name that starts at ``text[start]`` (``start`` when there is none)."""
    end = start
    words = 0
    last_word = ""
    first_upper = False
    for m in _TOKEN.finditer(text, start, min(len(text), start + 80)):
        tok = m.group()
        if tok == "." and len(last_word) == 1 and m.start() == end:
            end = m.end()  # an initial: "Budi S. Hartono"
            last_word = ""
            continue
        if not tok[0].isalpha() or words == _MAX_NAME_WORDS:
            break
        low = tok.lower()
        if low in _NOT_NAME or (len(low) > 1 and low in _stopwords()):
            break
        if not tok[0].isupper():
            # A name begun with a capital goes on in capitals ("a/n Rudi Hartono kemarin").
            if capitalised_only or (words and first_upper) or (not lower_ok and _known_word(low)) \
                    or _affixed_word(low):
                break
        if not words:
            first_upper = tok[0].isupper()
        end = m.end()
        words += 1
        last_word = tok
    return end


def _address_end(text: str, start: int) -> int:
    """End of the address that starts at ``text[start]`` (``start`` when there is none)."""
    end = start
    previous = ""
    for m in _TOKEN.finditer(text, start, min(len(text), start + _MAX_ADDRESS_CHARS)):
        tok = m.group()
        low = tok.lower()
        if tok in ("\\n", "\n"):
            break
        if tok == ".":
            if previous in _ABBREVIATIONS:
                continue
            break
        if tok in (",", "/", "-", ":"):
            previous = tok
            continue
        if not tok[0].isalnum():
            break
        if not (tok[0].isupper() or tok[0].isdigit() or low in _ADDRESS_WORDS) and (
                low in _stopwords() or _known_word(low)):
            break
        end = m.end()
        previous = low
    return end


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return frozenset(StemmerFactory().get_words())


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

    return frozenset(StopWordRemoverFactory().get_stop_words())


@lru_cache(maxsize=4096)
def _known_word(word: str) -> bool:
    """An Indonesian word (its root in Sastrawi's dictionary): "kebanjiran", not "Budiono"."""
    if word in _dictionary():
        return True
    from ._sastrawi import create_sastrawi_stemmer

    return _stemmer(create_sastrawi_stemmer).stem(word) in _dictionary()


@lru_cache(maxsize=4096)
def _affixed_word(word: str) -> bool:
    """An Indonesian word with an affix ("tertanggal", "penerima"): a name rarely is one."""
    from ._sastrawi import create_sastrawi_stemmer

    root = _stemmer(create_sastrawi_stemmer).stem(word)
    return root != word and root in _dictionary()


@lru_cache(maxsize=1)
def _stemmer(factory):
    return factory()


def _people_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for cue, lower_ok in ((_STRONG_NAME_CUE, True), (_WEAK_NAME_CUE, False)):
        for m in cue.finditer(text):
            end = _name_end(text, m.end(), lower_ok=lower_ok)
            if end > m.end():
                spans.append((m.end(), end, "[NAMA]"))
    for m in _HONORIFIC.finditer(text):
        end = _name_end(text, m.end(), lower_ok=False, capitalised_only=True)
        if end > m.end():
            spans.append((m.end(), end, "[NAMA]"))
    for m in _ADDRESS_CUE.finditer(text):
        end = _address_end(text, m.end())
        if end > m.end():
            spans.append((m.end(), end, "[ALAMAT]"))
    for m in _STREET_WITH_NO.finditer(text):
        # A street is a home address when a house number follows its name ("Jl. Mawar 3 No. 16");
        # the name may be written in lower case with common words ("jl. pucang sawit no 12").
        spans.append((m.start(), max(m.end(), _address_end(text, m.end())), "[ALAMAT]"))
    for m in _STREET_BARE_NO.finditer(text):
        spans.append((m.start(), m.end(), "[ALAMAT]"))
    for m in _RT_RW.finditer(text):
        no = _HOUSE_NO.match(text, m.end())
        spans.append((m.start(), no.end() if no else m.end(), "[ALAMAT]"))
    return spans


def _mask_people(text: str) -> str:
    spans = _people_spans(text)
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    last = 0
    for start, end, label in spans:
        if start < last:  # overlapping spans become one; an address wins over a name inside it
            if end > last:
                last = end
            if label == "[ALAMAT]":
                pieces[-1] = label
            continue
        pieces += (text[last:start], label)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)
