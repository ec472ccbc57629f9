"""Tests for channels.sms.encoding: GSM-7/UCS-2 choice, segment counting and boundary-safe splitting."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.sms.encoding import (
    _UNACCENT_MAP,
    DATA_CODING,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION_TABLE,
    Encoding,
    SplitMessage,
    _chunks,
    analyse,
    decode_gsm7,
    detect_encoding,
    encode_gsm7,
    non_gsm_characters,
    normalize,
    split,
    unaccent,
)

# A real-looking announcement, NFC, no astral characters; trimmed to exactly 115 characters.
VIETNAMESE_115 = (
    "Thông báo: Ủy ban nhân dân thành phố Đà Nẵng đề nghị người dân hạn chế ra đường "
    "trong thời gian bão số 5 đổ bộ vào đất liền."
)[:115]


def _reassemble(message: SplitMessage) -> str:
    if message.encoding is Encoding.UCS2:
        return "".join(part.payload.decode("utf-16-be") for part in message.parts)
    return "".join(decode_gsm7(part.payload) for part in message.parts)


def _units(text: str, encoding: Encoding) -> int:
    if encoding is Encoding.UCS2:
        return len(text.encode("utf-16-be")) // 2
    return len(encode_gsm7(text))


# --- detection and unaccenting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đà Nẵng", Encoding.UCS2),
        ("Da Nang", Encoding.GSM7),
        ("Thông báo", Encoding.UCS2),
        ("Thong bao", Encoding.GSM7),
        ("Giá 100€ {x}", Encoding.UCS2),  # á is not GSM
        ("Gia 100€ {x} [y] ~ | ^ \\", Encoding.GSM7),
        ("è é ù ì ò Ç à Ä Ö Ñ Ü ä ö ñ ü É", Encoding.GSM7),  # the accented letters GSM-7 does have
        ("ç", Encoding.UCS2),  # only capital Ç is at 0x09 in TS 23.038 §6.2.1
        ("a – b", Encoding.UCS2),  # en dash
        ("hello 😀", Encoding.UCS2),
        ("\x1b", Encoding.UCS2),  # a raw escape is not a character of the alphabet
        ("", Encoding.GSM7),
        ("e\u0301", Encoding.UCS2),  # detect_encoding does not normalise; analyse/split do
    ],
)
def test_detect_encoding(text: str, expected: Encoding) -> None:
    assert detect_encoding(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đà Nẵng", "Da Nang"),
        ("Thông báo khẩn", "Thong bao khan"),
        ("Người dân Đường Ưu tiên", "Nguoi dan Duong Uu tien"),
        ("đ Đ", "d D"),
        ("a – b — c", "a - b - c"),
        ("“Khẩn” ‘cấp’", "\"Khan\" 'cap'"),
        ("Chờ…", "Cho..."),
        ("10\u00a0giờ", "10 gio"),
        (unicodedata.normalize("NFD", "Đà Nẵng"), "Da Nang"),
        ("plain ASCII {€}", "plain ASCII {€}"),
    ],
)
def test_unaccent(text: str, expected: str) -> None:
    result = unaccent(text)
    assert result == expected
    assert detect_encoding(result) is Encoding.GSM7


def test_unaccent_makes_real_announcement_gsm7() -> None:
    assert detect_encoding(VIETNAMESE_115) is Encoding.UCS2
    assert detect_encoding(unaccent(VIETNAMESE_115)) is Encoding.GSM7
    assert len(unaccent(VIETNAMESE_115)) == 115


def test_normalize_is_nfc_only() -> None:
    nfd = unicodedata.normalize("NFD", "Đà Nẵng")
    assert normalize(nfd) == "Đà Nẵng"
    assert normalize("  Mixed Case –  ") == "  Mixed Case –  "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đà Nẵng Đà", ["Đ", "ẵ"]),  # à is GSM-7; duplicates reported once
        ("Da Nang {€}", []),
        ("a – 😀 – b", ["–", "😀"]),
    ],
)
def test_non_gsm_characters(text: str, expected: list[str]) -> None:
    assert non_gsm_characters(text) == expected


def test_data_coding_values() -> None:
    assert DATA_CODING == {Encoding.GSM7: 0x00, Encoding.UCS2: 0x08}


# --- analyse ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", Encoding.GSM7, 0, 1, 160),
        ("a" * 160, Encoding.GSM7, 160, 1, 160),
        ("a" * 161, Encoding.GSM7, 161, 2, 153),
        ("a" * 306, Encoding.GSM7, 306, 2, 153),
        ("a" * 307, Encoding.GSM7, 307, 3, 153),
        ("€" * 80, Encoding.GSM7, 160, 1, 160),  # extension characters cost 2 septets
        ("€" * 80 + "a", Encoding.GSM7, 161, 2, 153),
        ("{" * 153, Encoding.GSM7, 306, 3, 153),  # 76 escape pairs fit per part, not 76.5
        ("ạ" * 70, Encoding.UCS2, 70, 1, 70),
        ("ạ" * 71, Encoding.UCS2, 71, 2, 67),
        ("ạ" * 134, Encoding.UCS2, 134, 2, 67),
        ("ạ" * 135, Encoding.UCS2, 135, 3, 67),
        ("😀" * 35, Encoding.UCS2, 70, 1, 70),
        ("😀" * 67, Encoding.UCS2, 134, 3, 67),  # 33 emoji per part: pairs are never cut
    ],
)
def test_analyse_boundaries(
    text: str, encoding: Encoding, units: int, segments: int, per_segment: int
) -> None:
    result = analyse(text)
    assert result.encoding is encoding
    assert result.units == units
    assert result.segments == segments
    assert result.per_segment == per_segment


def test_analyse_reports_characters_and_non_gsm() -> None:
    result = analyse("Giá {x} 😀")
    assert result.characters == 9
    assert result.units == 10  # emoji is two UTF-16 units
    assert result.non_gsm == ("á", "😀")
    gsm = analyse("Gia {x}")
    assert (gsm.characters, gsm.units, gsm.non_gsm) == (7, 9, ())  # { and } cost 2 each


def test_analyse_normalises_nfd_first() -> None:
    nfd = unicodedata.normalize("NFD", VIETNAMESE_115)
    assert len(VIETNAMESE_115) == 115
    assert len(nfd) > 134  # without NFC this would be 3 UCS-2 parts (smpplib make_parts does that)
    result = analyse(nfd)
    assert (result.characters, result.units, result.segments) == (115, 115, 2)


def test_analyse_unaccented() -> None:
    result = analyse(unicodedata.normalize("NFD", VIETNAMESE_115), unaccented=True)
    assert result.encoding is Encoding.GSM7
    assert result.segments == 1
    assert result.non_gsm == ()


# --- split --------------------------------------------------------------------------------------------


def test_split_nfd_vietnamese_gives_two_parts() -> None:
    nfd = unicodedata.normalize("NFD", VIETNAMESE_115)
    message = split(nfd, reference=7)
    assert message.encoding is Encoding.UCS2
    assert message.data_coding == 0x08
    assert len(message.parts) == 2
    assert _reassemble(message) == VIETNAMESE_115
    assert "".join(part.text for part in message.parts) == VIETNAMESE_115


def test_split_single_part_has_no_udh() -> None:
    message = split("Da Nang {€}", reference=3)
    assert message.esm_class == 0
    assert message.data_coding == 0x00
    assert message.reference == 3
    (part,) = message.parts
    assert (part.number, part.total, part.udh) == (1, 1, b"")
    assert part.short_message == part.payload == encode_gsm7("Da Nang {€}")


def test_split_single_ucs2_payload() -> None:
    message = split("Đà Nẵng 😀", reference=0)
    (part,) = message.parts
    assert message.encoding is Encoding.UCS2
    assert part.payload == "Đà Nẵng 😀".encode("utf-16-be")
    assert part.udh == b""


@pytest.mark.parametrize(
    ("reference", "reference_16bit", "expected_udh"),
    [
        (0xAB, False, [bytes((0x05, 0x00, 0x03, 0xAB, 2, 1)), bytes((0x05, 0x00, 0x03, 0xAB, 2, 2))]),
        (0, False, [bytes((0x05, 0x00, 0x03, 0x00, 2, 1)), bytes((0x05, 0x00, 0x03, 0x00, 2, 2))]),
        (
            0x1234,
            True,
            [bytes((0x06, 0x08, 0x04, 0x12, 0x34, 2, 1)), bytes((0x06, 0x08, 0x04, 0x12, 0x34, 2, 2))],
        ),
        (
            0xFF01,
            True,
            [bytes((0x06, 0x08, 0x04, 0xFF, 0x01, 2, 1)), bytes((0x06, 0x08, 0x04, 0xFF, 0x01, 2, 2))],
        ),
    ],
)
def test_split_udh_bytes(reference: int, reference_16bit: bool, expected_udh: list[bytes]) -> None:
    message = split("a" * 200, reference=reference, reference_16bit=reference_16bit)
    assert message.esm_class == 0x40
    assert message.reference == reference
    assert [part.udh for part in message.parts] == expected_udh
    for part in message.parts:
        assert part.short_message == part.udh + part.payload
    assert [part.number for part in message.parts] == [1, 2]
    assert {part.total for part in message.parts} == {2}


@pytest.mark.parametrize(
    ("reference_16bit", "gsm_per_part", "ucs2_per_part"),
    [(False, 153, 67), (True, 152, 66)],
)
def test_split_part_sizes(reference_16bit: bool, gsm_per_part: int, ucs2_per_part: int) -> None:
    gsm = split("a" * (gsm_per_part * 2 + 1), reference=1, reference_16bit=reference_16bit)
    assert [len(part.payload) for part in gsm.parts] == [gsm_per_part, gsm_per_part, 1]
    ucs2 = split("ạ" * (ucs2_per_part * 2 + 1), reference=1, reference_16bit=reference_16bit)
    assert [len(part.payload) for part in ucs2.parts] == [ucs2_per_part * 2, ucs2_per_part * 2, 2]
    for part in ucs2.parts:
        assert len(part.short_message) <= 140


@pytest.mark.parametrize("reference_16bit", [False, True])
@pytest.mark.parametrize("emoji", ["😀", "🇻🇳", "👍🏽"])
def test_split_never_cuts_surrogate_pair(reference_16bit: bool, emoji: str) -> None:
    per_part = 66 if reference_16bit else 67
    # The emoji's high surrogate would be unit `per_part` of part 1, its low surrogate unit 1 of part 2.
    text = "ạ" * (per_part - 1) + emoji + "b" * 80
    message = split(text, reference=9, reference_16bit=reference_16bit)
    assert message.encoding is Encoding.UCS2
    for part in message.parts:
        part.payload.decode("utf-16-be", errors="strict")
        assert len(part.payload) // 2 <= per_part
        last_unit = int.from_bytes(part.payload[-2:], "big")
        assert not 0xD800 <= last_unit <= 0xDBFF  # never ends on a high surrogate
    assert len(message.parts[0].payload) == (per_part - 1) * 2  # the cut part got one unit fewer
    assert _reassemble(message) == text


@pytest.mark.parametrize("reference_16bit", [False, True])
@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION_TABLE.values()))
def test_split_never_cuts_escape_pair(reference_16bit: bool, char: str) -> None:
    per_part = 152 if reference_16bit else 153
    # ESC would be septet `per_part` of part 1 and the extension code septet 1 of part 2.
    text = "a" * (per_part - 1) + char + "b" * 100
    message = split(text, reference=9, reference_16bit=reference_16bit)
    assert message.encoding is Encoding.GSM7
    for part in message.parts:
        assert not part.payload.endswith(b"\x1b")
        assert len(part.payload) <= per_part
    assert len(message.parts[0].payload) == per_part - 1
    assert message.parts[1].payload.startswith(encode_gsm7(char))
    assert _reassemble(message) == text


def test_split_escape_pairs_across_many_parts() -> None:
    text = "€{" * 200 + "x"
    message = split(text, reference=200)
    assert all(not part.payload.endswith(b"\x1b") for part in message.parts)
    assert len(message.parts) == analyse(text).segments
    assert _reassemble(message) == text


@pytest.mark.parametrize(
    ("reference", "reference_16bit"),
    [(-1, False), (256, False), (-1, True), (65536, True)],
)
def test_split_rejects_reference_out_of_range(reference: int, reference_16bit: bool) -> None:
    with pytest.raises(ValueError, match="reference"):
        split("a" * 200, reference=reference, reference_16bit=reference_16bit)


@pytest.mark.parametrize(("reference", "reference_16bit"), [(255, False), (256, True), (65535, True)])
def test_split_accepts_reference_at_range_edges(reference: int, reference_16bit: bool) -> None:
    message = split("a" * 200, reference=reference, reference_16bit=reference_16bit)
    assert message.reference == reference
    assert len(message.parts) == 2


def test_split_part_limit() -> None:
    assert len(split("a" * (153 * 255), reference=1).parts) == 255
    with pytest.raises(ValueError, match="255"):
        split("a" * (153 * 255 + 1), reference=1)


def test_split_forced_encoding() -> None:
    forced = split("Da Nang", reference=1, encoding=Encoding.UCS2)
    assert forced.encoding is Encoding.UCS2
    assert forced.data_coding == 0x08
    assert forced.parts[0].payload == "Da Nang".encode("utf-16-be")
    with pytest.raises(ValueError, match="GSM-7"):
        split("Đà Nẵng", reference=1, encoding=Encoding.GSM7)


_VIETNAMESE = "ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵĐƯƠ"
_GSM_ONLY = "abcXYZ019 .,!?\n@£$_ΔÉüà" + "€{}[]\\^~|"
_MIXED = _GSM_ONLY + _VIETNAMESE + "😀🇻🇳👍–“”"


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("reference_16bit", [False, True])
def test_split_random_texts(seed: int, reference_16bit: bool) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        alphabet = _GSM_ONLY if rng.random() < 0.5 else _MIXED
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 700)))
        message = split(text, reference=rng.randint(0, 255), reference_16bit=reference_16bit)
        expected = normalize(text)
        assert _reassemble(message) == expected
        assert "".join(part.text for part in message.parts) == expected
        if not reference_16bit:
            assert len(message.parts) == analyse(text).segments
        total = len(message.parts)
        if total == 1:
            single_limit = 160 if message.encoding is Encoding.GSM7 else 70
            assert _units(expected, message.encoding) <= single_limit
            continue
        per_part = {
            (Encoding.GSM7, False): 153,
            (Encoding.GSM7, True): 152,
            (Encoding.UCS2, False): 67,
            (Encoding.UCS2, True): 66,
        }[(message.encoding, reference_16bit)]
        for number, part in enumerate(message.parts, start=1):
            assert (part.number, part.total) == (number, total)
            assert part.udh[-2:] == bytes((total, number))
            assert _units(part.text, message.encoding) <= per_part
            if message.encoding is Encoding.UCS2:
                assert len(part.short_message) <= 140
            else:
                assert not part.payload.endswith(b"\x1b")
        # Greedy packing: a part is only closed when the next character would not fit.
        for current, following in zip(message.parts, message.parts[1:], strict=False):
            next_cost = _units(following.text[0], message.encoding)
            assert _units(current.text, message.encoding) + next_cost > per_part


# --- GSM 03.38 tables ---------------------------------------------------------------------------------


def test_basic_table_shape() -> None:
    assert len(GSM7_BASIC_TABLE) == 128
    assert len(set(GSM7_BASIC_TABLE)) == 128
    assert (GSM7_BASIC_TABLE[0x00], GSM7_BASIC_TABLE[0x02], GSM7_BASIC_TABLE[0x11]) == ("@", "$", "_")
    assert (GSM7_BASIC_TABLE[0x24], GSM7_BASIC_TABLE[0x40], GSM7_BASIC_TABLE[0x7F]) == ("¤", "¡", "à")
    assert len(GSM7_EXTENSION_TABLE) == 10


@pytest.mark.parametrize("code", [code for code in range(128) if code != 0x1B])
def test_gsm7_basic_round_trip(code: int) -> None:
    char = GSM7_BASIC_TABLE[code]
    assert encode_gsm7(char) == bytes((code,))
    assert decode_gsm7(bytes((code,))) == char
    assert detect_encoding(char) is Encoding.GSM7
    assert analyse(char).units == 1


@pytest.mark.parametrize(("code", "char"), sorted(GSM7_EXTENSION_TABLE.items()))
def test_gsm7_extension_round_trip(code: int, char: str) -> None:
    assert encode_gsm7(char) == bytes((0x1B, code))
    assert decode_gsm7(bytes((0x1B, code))) == char
    assert analyse(char).units == 2


def test_gsm7_whole_table_round_trip() -> None:
    everything = "".join(ch for code, ch in enumerate(GSM7_BASIC_TABLE) if code != 0x1B)
    everything += "".join(GSM7_EXTENSION_TABLE.values())
    encoded = encode_gsm7(everything)
    assert len(encoded) == 127 + 2 * 10
    assert max(encoded) <= 0x7F
    assert decode_gsm7(encoded) == everything


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x1b\x41", "A"),  # unknown extension code: show the basic-table character (TS 23.038 §6.2.1.1)
        (b"\x1b\x1b", " "),  # reserved escape to a further table shows a space
        (b"ab\x1b", "ab "),  # dangling escape
        (b"", ""),
    ],
)
def test_decode_gsm7_escape_edge_cases(data: bytes, expected: str) -> None:
    assert decode_gsm7(data) == expected


@pytest.mark.parametrize("data", [b"\x80", b"a\xff", b"\x1b\x80"])
def test_decode_gsm7_rejects_8bit_octets(data: bytes) -> None:
    with pytest.raises(ValueError, match="septet"):
        decode_gsm7(data)


@pytest.mark.parametrize("text", ["á", "ç", "\x1b", "😀", "\t"])
def test_encode_gsm7_rejects_non_gsm(text: str) -> None:
    with pytest.raises(ValueError, match=r"GSM 03\.38"):
        encode_gsm7(text)


def test_decoding_septets_without_escapes_matches_the_table_octet_by_octet() -> None:
    """The fast path (ASCII decode + translate) gives exactly the basic table's characters, including the
    codes where GSM-7 and ASCII differ (@ £ $ ¥ ¤ ¡ Ä … à)."""
    rng = random.Random(23038)
    septets = [code for code in range(0x80) if code != 0x1B]
    samples = [bytes(septets)] + [bytes(rng.choices(septets, k=rng.randint(0, 160))) for _ in range(300)]
    for data in samples:
        assert decode_gsm7(data) == "".join(GSM7_BASIC_TABLE[code] for code in data)
    with pytest.raises(ValueError, match="0x80"):
        decode_gsm7(b"abc\x80")


# The per-character definitions the whole-string analysis must agree with (its earlier implementation).
def _reference_cost(ch: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if ch in GSM7_EXTENSION_TABLE.values() else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _reference_analysis(text: str, unaccented: bool) -> tuple[Encoding, int, int, list[str], list[str]]:
    text = unicodedata.normalize("NFC", text)
    if unaccented:
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFC", text.translate(_UNACCENT_MAP))
    alphabet = set(GSM7_BASIC_TABLE.replace("\x1b", "")) | set(GSM7_EXTENSION_TABLE.values())
    encoding = Encoding.GSM7 if all(ch in alphabet for ch in text) else Encoding.UCS2
    units = sum(_reference_cost(ch, encoding) for ch in text)
    chunks, start, used = [], 0, 0
    for index, ch in enumerate(text):
        if used + _reference_cost(ch, encoding) > PART_LIMIT[encoding]:
            chunks.append(text[start:index])
            start, used = index, 0
        used += _reference_cost(ch, encoding)
    chunks.append(text[start:])
    non_gsm = list(dict.fromkeys(ch for ch in text if ch not in alphabet))
    return encoding, len(text), units, non_gsm, chunks


PART_LIMIT = {Encoding.GSM7: 153, Encoding.UCS2: 67}
# Vietnamese letters precomposed and as base + combining marks, GSM-7 escapes, typographic punctuation,
# emoji (astral) and plain ASCII, so generated texts cross every branch of the analysis.
_PIECES = [
    *"aăâeêioôơuưyđĐ ,.0123456789\n",
    *("ế", "ợ", "ữ", "Ạ", "e\u0302\u0301", "o\u031b\u0323", "a\u0300", "\u0301"),
    *"{}[]~^|\\€\x0c",
    *("–", "—", "“", "”", "…", "\u00a0", "😀", "🇻🇳", "\U0001d400", "ß", "Ç", "@"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=400).map("".join), st.booleans())
def test_the_whole_string_analysis_agrees_with_the_per_character_one(text: str, unaccented: bool) -> None:
    encoding, characters, units, non_gsm, chunks = _reference_analysis(text, unaccented)
    found = analyse(text, unaccented=unaccented)

    assert (found.encoding, found.characters, found.units) == (encoding, characters, units)
    assert list(found.non_gsm) == non_gsm
    assert found.segments == (
        1 if units <= {Encoding.GSM7: 160, Encoding.UCS2: 70}[encoding] else len(chunks)
    )
    written = unaccent(normalize(text)) if unaccented else normalize(text)
    assert _chunks(written, encoding, PART_LIMIT[encoding]) == chunks
