"""Turn message text into SMS parts: pick GSM-7 or UCS-2, count segments, and split with concatenation UDHs.

Pure functions, no I/O. We deliberately do not use ``smpplib.gsm.make_parts``: it splits UTF-16 surrogate
pairs and GSM-7 escape pairs across parts, does not normalise to NFC and picks a random 8-bit reference
(see docs/peers.md, smpplib gotcha 7). Vietnamese specifics are in docs/domain.md §2.

Sizes (3GPP TS 23.040 §9.2.3.24, TS 23.038 §6.1.2.1): a TP-UD holds 140 octets = 160 GSM-7 septets or
70 UCS-2 units. A concatenation UDH takes 6 octets with an 8-bit reference (IEI 0x00, §9.2.3.24.1) or
7 octets with a 16-bit reference (IEI 0x08, §9.2.3.24.8). For GSM-7 the septets start on the next septet
boundary after the UDH (fill bits), so 6 octets cost 7 septets (153 left) and 7 octets cost exactly 8
septets (152 left). For UCS-2: (140 - 6) // 2 = 67 and (140 - 7) // 2 = 66 units.

Over SMPP with data_coding 0 we send GSM-7 *unpacked* (one septet per octet); the SMSC packs it for the
air interface, which is why limits are still counted in septets.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DATA_CODING",
    "GSM7_BASIC_TABLE",
    "GSM7_EXTENSION_TABLE",
    "Encoding",
    "SmsAnalysis",
    "SmsPart",
    "SplitMessage",
    "analyse",
    "decode_gsm7",
    "detect_encoding",
    "encode_gsm7",
    "non_gsm_characters",
    "normalize",
    "split",
    "unaccent",
]


class Encoding(StrEnum):
    """The two alphabets we send: GSM 03.38 default alphabet or UCS-2 (sent as UTF-16-BE)."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


# SMPP v3.4 §5.2.19 data_coding: 0x00 = SMSC default alphabet (GSM 03.38 here), 0x08 = UCS2 (ISO/IEC-10646).
DATA_CODING: dict[Encoding, int] = {Encoding.GSM7: 0x00, Encoding.UCS2: 0x08}

_ESC = 0x1B

# 3GPP TS 23.038 §6.2.1 "GSM 7 bit Default Alphabet", code 0x00-0x7F, 16 per row.
# Position 0x1B is the escape to the extension table (§6.2.1.1); it has no character of its own, the
# "\x1b" placeholder below only keeps the indices right and is never produced or accepted as text.
GSM7_BASIC_TABLE: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)

# 3GPP TS 23.038 §6.2.1.1 "GSM 7 bit default alphabet extension table": each is sent as ESC (0x1B) + code,
# so it costs two septets.
GSM7_EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\x0c",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CODE: dict[str, int] = {ch: code for code, ch in enumerate(GSM7_BASIC_TABLE) if code != _ESC}
# Septets read as ASCII, then the codes where GSM-7 differs from ASCII swapped in (decode_gsm7's fast path).
_FROM_ASCII: dict[int, str] = {code: ch for code, ch in enumerate(GSM7_BASIC_TABLE) if chr(code) != ch}
_EXTENSION_CODE: dict[str, int] = {ch: code for code, ch in GSM7_EXTENSION_TABLE.items()}
# Septets per character; a character absent from this map forces UCS-2.
_GSM7_COST: dict[str, int] = {**dict.fromkeys(_BASIC_CODE, 1), **dict.fromkeys(_EXTENSION_CODE, 2)}

# TS 23.040 §9.2.3.24: 140-octet TP-UD; see module docstring for the per-part arithmetic.
_SINGLE_LIMIT: dict[Encoding, int] = {Encoding.GSM7: 160, Encoding.UCS2: 70}
_PART_LIMIT_8BIT: dict[Encoding, int] = {Encoding.GSM7: 153, Encoding.UCS2: 67}
_PART_LIMIT_16BIT: dict[Encoding, int] = {Encoding.GSM7: 152, Encoding.UCS2: 66}
_MAX_PARTS = 255  # the "total" field of the concatenation IE is one octet (TS 23.040 §9.2.3.24.1)

# SMPP v3.4 §5.2.12 esm_class bit 6 (0x40): UDHI, the short_message starts with a user data header.
_ESM_CLASS_UDHI = 0x40

# Typographic characters that word processors put into announcements and that GSM-7 lacks (docs/domain.md §2:
# "–" pushed a whole message to UCS-2). đ/Đ have no canonical decomposition, so NFD cannot strip them.
_UNACCENT_MAP: dict[int, str] = {
    ord("đ"): "d",
    ord("Đ"): "D",
    0x2010: "-",  # hyphen
    0x2011: "-",  # non-breaking hyphen
    0x2012: "-",  # figure dash
    0x2013: "-",  # en dash
    0x2014: "-",  # em dash
    0x2212: "-",  # minus sign
    0x201C: '"',  # left double quotation mark
    0x201D: '"',  # right double quotation mark
    0x201E: '"',  # double low-9 quotation mark
    0x2018: "'",  # left single quotation mark
    0x2019: "'",  # right single quotation mark
    0x201A: "'",  # single low-9 quotation mark
    0x2026: "...",  # horizontal ellipsis
    0x00A0: " ",  # no-break space
    0x202F: " ",  # narrow no-break space
    0x2009: " ",  # thin space
}


def normalize(text: str) -> str:
    """Return ``text`` in Unicode NFC: NFD Vietnamese is ~30 % longer and can cost an extra segment."""
    return unicodedata.normalize("NFC", text)


def unaccent(text: str) -> str:
    """Return the "không dấu" form: diacritics dropped, đ/Đ -> d/D, typographic punctuation -> GSM-7."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", decomposed.translate(_unaccent_table()))


# The analysis works on whole strings (one regex or ``str`` method each, in C) rather than character by
# character: a campaign analyses every message it plans, and the single-message API every request.
# tests/channels/test_sms_encoding.py checks it against the per-character definitions on generated texts.
_GSM7_ONLY = re.compile("[" + re.escape("".join(_GSM7_COST)) + "]*")
_GSM7_EXTENSION = re.compile("[" + re.escape("".join(_EXTENSION_CODE)) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.cache
def _unaccent_table() -> dict[int, str | None]:
    """``_UNACCENT_MAP`` plus every character with a non-zero canonical combining class (what
    ``unicodedata.combining`` tests) mapped to nothing: one ``str.translate`` strips and replaces."""
    marks = (code for code in range(sys.maxunicode + 1) if unicodedata.combining(chr(code)))
    return {**dict.fromkeys(marks), **_UNACCENT_MAP}


def detect_encoding(text: str) -> Encoding:
    """GSM7 iff every character is in the GSM 03.38 basic or extension table, else UCS2. No normalisation."""
    return Encoding.GSM7 if _GSM7_ONLY.fullmatch(text) else Encoding.UCS2


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters of ``text`` that force UCS-2, in order of first appearance."""
    if _GSM7_ONLY.fullmatch(text):
        return []
    return list(dict.fromkeys(ch for ch in text if ch not in _GSM7_COST))


def _unit_cost(ch: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return _GSM7_COST[ch]
    # UTF-16 code units: astral characters (emoji) are a surrogate pair.
    return 2 if ord(ch) > 0xFFFF else 1


def _double_units(text: str, encoding: Encoding) -> int:
    """How many characters of ``text`` cost two units: GSM-7 escapes, or UTF-16 surrogate pairs."""
    pattern = _GSM7_EXTENSION if encoding is Encoding.GSM7 else _ASTRAL
    return len(pattern.findall(text))


def _units(text: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7 and not _GSM7_ONLY.fullmatch(text):
        raise KeyError(next(ch for ch in text if ch not in _GSM7_COST))  # as a per-character lookup would
    return len(text) + _double_units(text, encoding)


def _chunks(text: str, encoding: Encoding, limit: int) -> list[str]:
    """Greedy split on whole characters, so an escape pair or surrogate pair is never cut in two."""
    if not _double_units(text, encoding):  # one unit per character: plain slices
        return [text[start : start + limit] for start in range(0, len(text), limit)] or [""]
    chunks: list[str] = []
    start = 0
    used = 0
    for index, ch in enumerate(text):
        cost = _unit_cost(ch, encoding)
        if used + cost > limit:
            chunks.append(text[start:index])
            start, used = index, 0
        used += cost
    chunks.append(text[start:])
    return chunks


@dataclass(frozen=True)
class SmsAnalysis:
    """What a text will cost: ``units`` are septets (GSM7, escapes count 2) or UTF-16 code units (UCS2)."""

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment: int
    non_gsm: tuple[str, ...]


def analyse(text: str, *, unaccented: bool = False) -> SmsAnalysis:
    """Normalise (and unaccent if asked) ``text``, then count it as ``split`` does with an 8-bit reference."""
    text = normalize(text)
    if unaccented:
        text = unaccent(text)
    encoding = detect_encoding(text)
    units = _units(text, encoding)
    if units <= _SINGLE_LIMIT[encoding]:
        segments, per_segment = 1, _SINGLE_LIMIT[encoding]
    else:
        per_segment = _PART_LIMIT_8BIT[encoding]
        segments = len(_chunks(text, encoding, per_segment))
    return SmsAnalysis(
        encoding=encoding,
        characters=len(text),
        units=units,
        segments=segments,
        per_segment=per_segment,
        non_gsm=tuple(non_gsm_characters(text)),
    )


@dataclass(frozen=True)
class SmsPart:
    """One submit_sm worth of text; ``payload`` excludes the UDH, ``udh`` is b"" for a single-part message."""

    number: int
    total: int
    text: str
    payload: bytes
    udh: bytes

    @property
    def short_message(self) -> bytes:
        """The SMPP short_message field: UDH (if any) followed by the encoded text."""
        return self.udh + self.payload


@dataclass(frozen=True)
class SplitMessage:
    """All parts of one message plus the SMPP fields that must be identical on each submit_sm."""

    encoding: Encoding
    data_coding: int
    esm_class: int
    parts: tuple[SmsPart, ...]
    reference: int


def _udh(*, reference: int, reference_16bit: bool, total: int, number: int) -> bytes:
    if reference_16bit:
        # TS 23.040 §9.2.3.24.8: UDHL=6, IEI 0x08, IEDL 4, reference (2 octets, big-endian), total, sequence.
        return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, number))
    # TS 23.040 §9.2.3.24.1: UDHL=5, IEI 0x00, IEDL 3, reference, total, sequence.
    return bytes((0x05, 0x00, 0x03, reference, total, number))


def _encode(text: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.GSM7:
        return encode_gsm7(text)
    return text.encode("utf-16-be")


def split(
    text: str, *, reference: int, encoding: Encoding | None = None, reference_16bit: bool = False
) -> SplitMessage:
    """Normalise ``text`` to NFC and cut it into SMS parts, with concatenation UDHs when it needs several.

    ``reference`` must be unique per (sender, recipient) among messages in flight: 0-255, or 0-65535 with
    ``reference_16bit``. ``encoding`` defaults to the cheapest one that can carry the text; forcing GSM7 on
    text with non-GSM characters raises ValueError (use ``unaccent`` first). More than 255 parts raises too.
    """
    max_reference = 0xFFFF if reference_16bit else 0xFF
    if not 0 <= reference <= max_reference:
        raise ValueError(f"concatenation reference {reference} is outside 0-{max_reference}")
    encoding, chunks = _layout(text, encoding, reference_16bit)
    if len(chunks) == 1:
        chunk_text, payload = chunks[0]
        single = SmsPart(number=1, total=1, text=chunk_text, payload=payload, udh=b"")
        return SplitMessage(
            encoding=encoding,
            data_coding=DATA_CODING[encoding],
            esm_class=0,
            parts=(single,),
            reference=reference,
        )
    total = len(chunks)
    parts = tuple(
        SmsPart(
            number=number,
            total=total,
            text=chunk_text,
            payload=payload,
            udh=_udh(reference=reference, reference_16bit=reference_16bit, total=total, number=number),
        )
        for number, (chunk_text, payload) in enumerate(chunks, start=1)
    )
    return SplitMessage(
        encoding=encoding,
        data_coding=DATA_CODING[encoding],
        esm_class=_ESM_CLASS_UDHI,
        parts=parts,
        reference=reference,
    )


@functools.lru_cache(maxsize=1024)
def _layout(
    text: str, encoding: Encoding | None, reference_16bit: bool
) -> tuple[Encoding, tuple[tuple[str, bytes], ...]]:
    """Everything of a split that does not depend on the reference: a campaign often sends one text to
    thousands of numbers, so the parts are cut and encoded once (only the UDH differs per message)."""
    text = normalize(text)
    if encoding is None:
        encoding = detect_encoding(text)
    elif encoding is Encoding.GSM7 and (bad := non_gsm_characters(text)):
        raise ValueError(f"text cannot be sent as GSM-7, it contains {bad!r}; unaccent it or send as UCS-2")
    if _units(text, encoding) <= _SINGLE_LIMIT[encoding]:
        return encoding, ((text, _encode(text, encoding)),)
    limits = _PART_LIMIT_16BIT if reference_16bit else _PART_LIMIT_8BIT
    chunks = _chunks(text, encoding, limits[encoding])
    if len(chunks) > _MAX_PARTS:
        raise ValueError(
            f"message needs {len(chunks)} parts, more than the {_MAX_PARTS} a concatenated SMS allows"
        )
    return encoding, tuple((chunk, _encode(chunk, encoding)) for chunk in chunks)


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM 03.38 septets, one per octet, ESC (0x1B) before extension characters.

    This is what SMSCs expect in short_message with data_coding 0 over SMPP. Raises ValueError on a
    character outside both tables.
    """
    out = bytearray()
    for ch in text:
        code = _BASIC_CODE.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _EXTENSION_CODE.get(ch)
        if ext is None:
            raise ValueError(f"character {ch!r} (U+{ord(ch):04X}) is not in the GSM 03.38 alphabet")
        out += bytes((_ESC, ext))
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """Inverse of ``encode_gsm7``; raises ValueError on an octet above 0x7F.

    Per TS 23.038 §6.2.1.1, an escape followed by a code not in the extension table shows the basic-table
    character, and ESC ESC (reserved for a further table) or a dangling ESC shows a space.
    """
    if data.isascii() and _ESC not in data:  # no escapes: one table lookup per septet, in C
        return data.decode("ascii").translate(_FROM_ASCII)
    chars: list[str] = []
    index = 0
    while index < len(data):
        code = data[index]
        if code > 0x7F:
            raise ValueError(f"octet 0x{code:02X} at offset {index} is not a GSM-7 septet")
        index += 1
        if code != _ESC:
            chars.append(GSM7_BASIC_TABLE[code])
            continue
        if index >= len(data):
            chars.append(" ")
            break
        ext = data[index]
        index += 1
        if ext > 0x7F:
            raise ValueError(f"octet 0x{ext:02X} at offset {index - 1} is not a GSM-7 septet")
        if ext == _ESC:
            chars.append(" ")
        else:
            chars.append(GSM7_EXTENSION_TABLE.get(ext, GSM7_BASIC_TABLE[ext]))
    return "".join(chars)
