"""mask_pii on realistic forms of Indonesian personal data, and on what must stay untouched."""

from __future__ import annotations

import random
import re

import pytest

from lapor_nlp.text import Preprocessor, mask_pii

# (text, placeholder that must appear, raw fragment that must disappear)
MASKED = [
    ("NIK saya 3578010101900001 mohon dicek", "[NIK]", "3578010101900001"),
    ("nik: 3578 0101 0190 0001", "[NIK]", "0190 0001"),
    ("No KK 3578.0101.0190.0002 sudah benar", "[NIK]", "0190.0002"),
    ("nomor kk 3273-0112-3456-7890", "[NIK]", "3456-7890"),
    ("NIK3578010101900001", "[NIK]", "3578010101900001"),
    ("KTP ５２７１０１０１０１９００００３ hilang", "[NIK]", "5271010101900003"),
    ("hubungi 081234567890 ya", "[TELEPON]", "081234567890"),
    ("wa 0812-3456-7890", "[TELEPON]", "3456-7890"),
    ("telp 0812 3456 7890 (budi)", "[TELEPON]", "3456 7890"),
    ("hp: 0857.1234.5678", "[TELEPON]", "1234.5678"),
    ("nomor +62 812 3456 7890", "[TELEPON]", "3456 7890"),
    ("+6281234567890 atas nama sari", "[TELEPON]", "81234567890"),
    ("62 813-1111-2222", "[TELEPON]", "1111-2222"),
    ("hub 0812\u20133456\u20137890", "[TELEPON]", "3456"),                # en dashes
    ("NIK 3578\u20110112\u20110190\u20110001", "[NIK]", "0190"),          # non-breaking hyphens
    ("hp 0812\u200b3456\u200b7890", "[TELEPON]", "3456"),                 # zero-width spaces
    ("cp 6285712345678.", "[TELEPON]", "6285712345678"),
    ("kantor (031) 5678910", "[TELEPON]", "5678910"),
    ("telp kantor 021-1234-5678", "[TELEPON]", "1234-5678"),
    ("Telpon : 0315678910", "[TELEPON]", "0315678910"),                  # landline, no separator
    ("kantor 031.567.8910", "[TELEPON]", "567.8910"),
    ("call center +62 31 5678910", "[TELEPON]", "5678910"),              # landline after +62
    ("sms ke 8123456789", "[TELEPON]", "8123456789"),
    ("email saya budi.santoso@gmail.com", "[EMAIL]", "budi.santoso@gmail.com"),
    ("kirim ke SARI_123@yahoo.co.id ya", "[EMAIL]", "yahoo.co.id"),
    ("cs: pengaduan@pemkot-contoh.go.id", "[EMAIL]", "pengaduan@"),
    ("motor plat L 1234 AB dicuri", "[PLAT]", "1234"),
    ("mobil B1234XYZ parkir sembarangan", "[PLAT]", "B1234XYZ"),
    ("truk nopol AG 5678 KL ngebut", "[PLAT]", "5678"),
    ("plat nomor dk 4321 ab", "[PLAT]", "4321"),
    ("mobil B-1234-XYZ", "[PLAT]", "1234"),
    ("motor L.5678.AB", "[PLAT]", "5678"),
    ("kendaraan BK 12 ZZ", "[PLAT]", "BK 12 ZZ"),
    ("transfer ke rekening 1234567890 BCA", "[REKENING]", "1234567890"),
    ("norek bri 0123-01-012345-50-1", "[REKENING]", "012345"),
    ("no. rek 123-456-7890 a.n budi", "[REKENING]", "456-7890"),
    ("No rekening: 9876543210", "[REKENING]", "9876543210"),
    ("rekening BCA atas nama Budi Santoso nomor 1234567890", "[REKENING]", "1234567890"),
    ("rek mandiri 1410012345678", "[REKENING]", "1410012345678"),
    ("no BPJS 0001234567890 ditolak", "[NIK]", "0001234567890"),
    ("NISN : 0012345678 belum terdaftar", "[NIK]", "0012345678"),
    ("data anak\\nNISN : 0012345678", "[NIK]", "0012345678"),        # after an escaped line break
    ("nomor induk siswa (nis) 202312345", "[NIK]", "202312345"),
    ("ID pelanggan PLN 512345678901", "[NIK]", "512345678901"),
]

UNTOUCHED = [
    "RT 03 RW 05 no 11",
    "Rp 1.500.000 per bulan",
    "tanggal 12-03-2022 jam 08.00 - 12.00",
    "beras 2 kg dan minyak 1 lt",
    "gang 3 no. 12 A",
    "sudah 3 hari lampu mati",
    "tahun 2022 dan 2023",
    "kelas 6 SD",
    "jalan nomor 45 b",
    "keluhan:\\n1.Ada sampah\\n2.Lampu mati",   # a numbered list ("n" is also a plate region)
    "rumah blok A-12 dan B-3",
    "jam 09.00-10.00 dan 13.00-14.00",
    "tanggal 01.02.2022",
    "KK kami terbit 12.03.2022",   # an identity cue before a date
    "jenis bantuan Rp 150.000.000",  # "nis" inside a word is no cue
    "biaya teknik Rp. 1.200.000.000",
    "rumah di blok F.12.A",         # dots around 1-2 digits: a block number, not a plate
    "lulusan S1 dan S3 ditolak",    # one or two digits glued to letters: abbreviations
    "kecelakaan K3 di pabrik",
    "agen P3MI ilegal, lapor ke BP3MI",
    "pengurus P3SRS apartemen",
]


@pytest.mark.parametrize("text, placeholder, secret", MASKED)
def test_masks_realistic_forms(text, placeholder, secret):
    masked = mask_pii(text)
    assert placeholder in masked, masked
    assert secret not in masked


@pytest.mark.parametrize("text", UNTOUCHED)
def test_leaves_ordinary_numbers(text):
    # The number rules alone (what the routing pipeline runs); "RT 03 RW 05" is an address to the
    # default, which masks people too.
    assert mask_pii(text, people=False) == text


def test_rekening_cue_word_is_kept():
    assert mask_pii("norek bca 1234567890") == "norek bca [REKENING]"


@pytest.mark.parametrize("text, placeholder, secret", MASKED)
def test_placeholders_survive_the_pipeline_as_single_tokens(preprocessor, text, placeholder, secret):
    tokens = preprocessor.tokens(text)
    assert placeholder in tokens
    assert not any(ch.isdigit() for tok in tokens for ch in tok if len(tok) > 6)


_SIXTEEN = re.compile(r"(?<!\d)\d(?:[ .\-]?\d){15}(?!\d)")
_PHONE = re.compile(r"(?<!\d)(?:\+?62|0)[ .\-]?8\d{1,3}(?:[ .\-]?\d{2,5}){1,3}(?!\d)")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")


@pytest.mark.shared_data
def test_no_identity_number_phone_or_email_survives_on_real_texts(surabaya_rows):
    pre = Preprocessor()
    for row in surabaya_rows:
        for out in (mask_pii(row["text"]), " ".join(pre.tokens(row["text"]))):
            # Report only the row id, never the text.
            assert not _SIXTEEN.search(out), f"16-digit number survives in row id={row['id']}"
            phone = _PHONE.search(out)
            assert not (phone and 10 <= sum(c.isdigit() for c in phone.group()) <= 14), \
                f"phone number survives in row id={row['id']}"
            assert not _EMAIL.search(out), f"email survives in row id={row['id']}"


def test_text_without_pii_comes_back_exactly_as_given():
    for text in ("anak\u00b2 main di \ufb01lter", "ukuran \u00bd meter, caf\u00e9", "jalan rusak"):
        assert mask_pii(text) is text or mask_pii(text) == text


def test_email_scan_takes_linear_time_on_hostile_input():
    """A long run of address characters with an '@' and no domain used to be re-scanned from each
    of its characters (500,000 characters: 293 s). The guard is generous (60 s for what now
    takes well under a second); it fails only on a return to quadratic time."""
    import signal

    def too_slow(signum, frame):
        raise AssertionError("mask_pii took quadratic time on a hostile input")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(60)
    try:
        for hostile in ("a" * 300_000 + "@", "a." * 150_000 + "@b", "a-" * 150_000 + " x"):
            assert mask_pii(hostile) is not None
            Preprocessor().tokens(hostile[:50_000])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_dashes_are_read_in_numbers_but_given_back_elsewhere():
    # the en dash between words stays: the rest of the pipeline sees the same words with or
    # without a number masked in the same text
    assert mask_pii("anak\u2013anak main, hub 0812\u20133456\u20137890") == "anak\u2013anak main, hub [TELEPON]"
    pre = Preprocessor()
    assert pre.tokens("anak\u2013anak main, hub 0812\u20133456\u20137890")[:3] == pre.tokens("anak\u2013anak main")


@pytest.mark.parametrize("text, masked", [
    ("kamar 5\u20130812345678", "kamar 5\u2013[TELEPON]"),      # a short number dashed onto a phone
    ("no 5 0812345678 ya", "no 5 [TELEPON] ya"),
    ("mobil saya\u200bB 1234 XYZ ditabrak", "mobil saya [PLAT] ditabrak"),  # a zero-width space is a break
    ("email budi.santoso." + "x" * 60 + "@gmail.com ya", "email [EMAIL] ya"),  # a local part over 64
])
def test_numbers_and_addresses_found_where_runs_meet(text, masked):
    assert mask_pii(text) == masked


def test_python_m_schemas_still_prints_the_schemas():
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lapor_nlp.schemas"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and set(json.loads(r.stdout)) == {"Complaint", "Prediction"}


# -- names and home addresses (mask_pii's default, people=True) --------------------------------------------
# (text, what the masked text must be): each cue of the issue, and the words around it kept.
PEOPLE_MASKED = [
    ("Nama : Slamet Budiono, alamat KTP : Jl. Jojoran baru No.16",
     "Nama : [NAMA], alamat KTP : [ALAMAT]"),
    ("nama saya budi santoso mau tanya", "nama saya [NAMA] mau tanya"),       # lower case after a strong cue
    ("nama anak saya Siti Aminah umur 5", "nama anak saya [NAMA] umur 5"),
    ("a.n. Budi Hartono. Terima kasih", "a.n. [NAMA]. Terima kasih"),
    ("rekening atas nama BILAL SATRIA ke NIK", "rekening atas nama [NAMA] ke NIK"),
    ("Bapak Budi S. Hartono datang", "Bapak [NAMA] datang"),                 # an initial inside the name
    ("mohon Bu Ratna dibantu", "mohon Bu [NAMA] dibantu"),
    ("Sdr. Andi Wijaya tidak hadir", "Sdr. [NAMA] tidak hadir"),
    ("alamat saya di Kupang Jaya 2 no 14 Surabaya, mohon dibantu", "alamat saya di [ALAMAT], mohon dibantu"),
    ("rumah di Jl. Mawar 3 No. 16 kebanjiran", "rumah di [ALAMAT] kebanjiran"),
    ("depan jl. pucang sawit no 12 banjir", "depan [ALAMAT] banjir"),         # a lower-case street name
    ("RT 03 RW 05 no 11 banjir", "[ALAMAT] banjir"),
    ("transfer a/n Rudi Hartono kemarin", "transfer a/n [NAMA] kemarin"),
    ("Pelapor: Andi Wijaya", "Pelapor: [NAMA]"),
    ("namanya Joko, tinggal di Jl. Kenanga 5 Surabaya", "namanya [NAMA], tinggal di [ALAMAT] Surabaya"),
    ("Nama: Slamet\\nAlamat: Jl. Kenanga No. 5\\nNIK 3578010101900001",      # escaped line breaks
     "Nama: [NAMA]\\nAlamat: [ALAMAT]\\nNIK [NIK]"),
]
# No cue, or a cue followed by an office, a title or a common word: nothing is masked.
PEOPLE_UNTOUCHED = [
    "jalan rusak di ketintang",
    "Jl. Raya Darmo macet setiap pagi",     # a street without a house number is a public place
    "Bapak Walikota yth, mohon ditindak",
    "Ibu Kota baru",
    "pak RT tidak peduli",
    "atas nama warga kami kecewa",
    "menjaga nama baik kota",
    "nama jalan itu apa",
    "alamat agar sesuai dgn nama di KTP",
    "Ibu Kepala Dinas sudah datang",
    "jalan rusak 3 bulan tidak diperbaiki",
]


@pytest.mark.parametrize("text, expected", PEOPLE_MASKED)
def test_people_masks_names_and_home_addresses_after_a_cue(text, expected):
    assert mask_pii(text) == expected


@pytest.mark.parametrize("text", PEOPLE_UNTOUCHED)
def test_people_leaves_offices_titles_and_public_places(text):
    assert mask_pii(text) == text


def test_routing_pipeline_keeps_the_words_of_an_address(preprocessor):
    # The gazetteer reads the street and kelurahan words: the Preprocessor masks numbers only.
    tokens = preprocessor.tokens("Nama : Slamet Budiono, alamat : Jl. Ketintang Baru No. 16")
    assert "ketintang" in tokens
    assert "[NAMA]" not in tokens and "[ALAMAT]" not in tokens


@pytest.mark.shared_data
def test_people_masking_on_real_texts_masks_the_cued_names(surabaya_rows):
    # A structured form ("Nama : X") is the commonest way a name enters a complaint: after masking,
    # no "Nama :" is followed by a capitalised word that is not a title or a common word.
    from lapor_nlp.text.pii import _NOT_NAME, _known_word

    form = re.compile(r"\bNama\s*:\s*([A-Z][A-Za-z]+)")
    left = []
    for row in surabaya_rows:
        for m in form.finditer(mask_pii(row["text"])):
            word = m.group(1).lower()
            if word not in _NOT_NAME and not _known_word(word):
                left.append(row["id"])  # the row id only, never the text
    assert not left, f"names left after 'Nama :' in rows {left[:10]}"


def test_ascii_runs_are_the_regex_runs():
    """The masker's jump-to-digit loop finds the runs ``_RUN_ASCII.finditer`` finds."""
    from lapor_nlp.text.pii import _RUN_ASCII, _ascii_runs

    rng = random.Random(7)
    alphabet = "0123456789" * 3 + "().- " * 4 + "abcRT\n@+"
    texts = ["", "x", "7", "0812-3456-7890", "RT 03 RW 05", "(031) 555 12 34.", "a1b2c3", "12 ( 34 ) -"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(60))) for _ in range(3000)]
    for text in texts:
        assert [m.span() for m in _ascii_runs(text)] == [m.span() for m in _RUN_ASCII.finditer(text)]


def test_the_plates_quick_refusal_refuses_only_what_the_regexes_refuse():
    from lapor_nlp.text.pii import _plate_span, _plate_span_by_pattern

    rng = random.Random(5)
    alphabet = ["B", "L", "AB", "ad", "RT", "rw", "x", "é", "Ä", " ", ".", "-", "/", "\n", "\r", "1234", "56", "7"]
    found = 0
    for _ in range(30_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 9)))
        runs = [m for m in re.finditer(r"\d+", text) if m.end() - m.start() <= 4]
        for m in runs:
            floor = rng.choice([0, 0, max(0, m.start() - rng.randrange(5))])
            expected = _plate_span_by_pattern(text, m.start(), m.end(), floor)
            assert _plate_span(text, m.start(), m.end(), floor) == expected, (text, m.span(), floor)
            found += expected is not None
    assert found > 80
