"""Chain of identity: ISBT 128 identifiers (ICCBBA ST-001 and ST-028).

Facility identification numbers (FIN) are assigned by ICCBBA, so they come in as
configuration; nothing here invents one. See ``shared/reference/isbt128.md``.

Examples
--------
>>> din = Din("G123417654321")
>>> din.check_character, din.type3_flags
('A', '70')
>>> din.eye_readable
'G1234 17 654321 A'
>>> din.data_content()
'=G12341765432100'
>>> Din.parse_scan("=G12341765432170").value
'G123417654321'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from vein2vein.domain.errors import InvalidIdentifier, InvalidScan

__all__ = [
    "DEMONSTRATION_FINS",
    "ChainOfIdentityId",
    "Din",
    "IdentifierIssuer",
    "ScannedIdentity",
    "SequenceAllocator",
    "check_character",
    "mod37_2_checksum",
    "parse_scan",
]

# ICCBBA's example FINs: identifiers issued under them are demonstrations, never clinical.
DEMONSTRATION_FINS = frozenset({"A9999", "G1234"})

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_FIN = r"[A-NP-Z1-9][A-NP-Z0-9]{2}[0-9]{2}"
_FIN_RE = re.compile(_FIN)
_DIN_RE = re.compile(rf"{_FIN}[0-9]{{2}}[0-9]{{6}}")
_FLAG_CHARS = re.compile(r"[0-9A-HJ-NPR-Y]{2}")
_COI_RE = re.compile(rf"CH{_FIN}[0-9]{{2}}[A-Z0-9]{{6}}")
_COI_SEQUENCE_RE = re.compile(r"[A-Z0-9]{6}")
_DS040_IDENTIFIER = "&/"
_DS001_IDENTIFIER = "="


def mod37_2_checksum(chars: str) -> int:
    """ISO/IEC 7064 Mod 37-2 checksum (0..36) of ``chars`` (0-9, A-Z, ``*``).

    >>> mod37_2_checksum("G123417654321")
    10
    """
    p = 0
    for ch in chars:
        try:
            value = _VALUE[ch]
        except KeyError:
            raise InvalidIdentifier(
                f"character {ch!r} in {chars!r}: expected 0-9, A-Z or '*'"
            ) from None
        p = ((p + value) * 2) % 37
    return (38 - p) % 37


def check_character(din: str) -> str:
    """The keyboard-entry check character K of a 13-character DIN.

    >>> check_character("G123498654321")
    'H'
    """
    return _ALPHABET[mod37_2_checksum(Din(din).value)]


def validate_fin(fin: str) -> str:
    """Return ``fin`` if it is a well-formed ISBT 128 facility identification number."""
    if not _FIN_RE.fullmatch(fin):
        raise InvalidIdentifier(
            f"FIN {fin!r}: expected 5 characters, first A-N/P-Z/1-9, then two of A-N/P-Z/0-9, "
            "then two digits"
        )
    return fin


@dataclass(frozen=True, slots=True)
class Din:
    """ISBT 128 Donation Identification Number: 5-char FIN, 2-digit year, 6-digit sequence."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _DIN_RE.fullmatch(self.value):
            raise InvalidIdentifier(
                f"DIN {self.value!r}: expected 13 characters αppppyynnnnnn "
                "(FIN, nominal year, 6-digit sequence)"
            )

    @classmethod
    def build(cls, fin: str, year: int, sequence: int) -> Din:
        """The DIN for ``sequence`` (1..999999) of nominal ``year`` at facility ``fin``."""
        validate_fin(fin)
        if not 0 <= year <= 99:
            raise InvalidIdentifier(f"DIN nominal year {year!r}: expected 0..99")
        if not 1 <= sequence <= 999_999:
            raise InvalidIdentifier(f"DIN sequence {sequence!r}: expected 1..999999")
        return cls(f"{fin}{year:02d}{sequence:06d}")

    @property
    def fin(self) -> str:
        return self.value[:5]

    @property
    def year(self) -> str:
        return self.value[5:7]

    @property
    def sequence(self) -> str:
        return self.value[7:]

    @property
    def checksum(self) -> int:
        return mod37_2_checksum(self.value)

    @property
    def check_character(self) -> str:
        """K, printed after the eye-readable DIN for keyboard entry."""
        return _ALPHABET[self.checksum]

    @property
    def type3_flags(self) -> str:
        """Flag characters of type 3: 60 + the Mod 37-2 checksum."""
        return str(60 + self.checksum)

    @property
    def eye_readable(self) -> str:
        """``G1234 17 654321 A``: the DIN as printed under the bar code, with K."""
        return f"{self.fin} {self.year} {self.sequence} {self.check_character}"

    def data_content(self, flags: str = "00") -> str:
        """Bar-coded data content of data structure 001: ``=`` + DIN + two flag characters."""
        if not _FLAG_CHARS.fullmatch(flags):
            raise InvalidIdentifier(f"DIN flags {flags!r}: expected 2 of 0-9, A-H, J-N, P, R-Y")
        return f"{_DS001_IDENTIFIER}{self.value}{flags}"

    @classmethod
    def parse_scan(cls, text: str) -> Din:
        """Read a DIN from a scan or a keyboard entry.

        Accepts the bar-code data content (``=`` + DIN + flags; type 3 flags are checked),
        the eye-readable form with its check character (``G1234 17 654321 A``; K is checked)
        and the bare 13 characters.
        """
        raw = text.strip()
        if raw.startswith(_DS001_IDENTIFIER):
            body = raw[1:].replace(" ", "").upper()
            if len(body) != 15:
                raise InvalidScan(
                    f"DIN scan {text!r}: expected '=' + 13 DIN characters + 2 flag characters"
                )
            din = cls._from_scan(body[:13], text)
            flags = body[13:]
            if not _FLAG_CHARS.fullmatch(flags):
                raise InvalidScan(f"DIN scan {text!r}: flags {flags!r} are not ISBT 128 flags")
            if not _assigned_flags(flags):
                raise InvalidScan(
                    f"DIN scan {text!r}: flags {flags} are reserved by ICCBBA (ST-001); "
                    "expected 00-13 or 15-59, or the type 3 flags 60-96"
                )
            if 60 <= int(flags) <= 96 and flags != din.type3_flags:
                raise InvalidScan(
                    f"DIN scan {text!r}: type 3 flags {flags} do not match the DIN "
                    f"(expected {din.type3_flags})"
                )
            return din
        compact = raw.replace(" ", "").upper()
        if len(compact) == 14:
            din = cls._from_scan(compact[:13], text)
            if compact[13] != din.check_character:
                raise InvalidScan(
                    f"DIN entry {text!r}: check character {compact[13]!r} does not match "
                    f"(expected {din.check_character!r}); re-enter the number"
                )
            return din
        return cls._from_scan(compact, text)

    @classmethod
    def _from_scan(cls, value: str, text: str) -> Din:
        try:
            return cls(value)
        except InvalidIdentifier as exc:
            # "DIN 'X': expected …" → "DIN scan 'text': expected …", not both names.
            raise InvalidScan(f"DIN scan {text!r}: {exc.message.split(': ', 1)[-1]}") from None

    def __str__(self) -> str:
        return self.value


def _assigned_flags(flags: str) -> bool:
    """Flags with a meaning in ST-001: 00 (none), containers 01-04 and 15-19, process
    control 05-13, local 20-59, type 3 60-96; 14, 97-99 and letters are reserved."""
    return flags.isdigit() and int(flags) != 14 and int(flags) <= 96


@dataclass(frozen=True, slots=True)
class ChainOfIdentityId:
    """ISBT 128 Chain of Identity identifier, data structure 040 (ST-028).

    15 characters: ``CH`` + issuing FIN + nominal year + 6-character sequence (A-Z, 0-9).
    It links the collections that serve one therapy event. It carries no check character.
    """

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _COI_RE.fullmatch(self.value):
            raise InvalidIdentifier(
                f"COI {self.value!r}: expected 15 characters CH + FIN + yy + 6 of A-Z/0-9"
            )

    @classmethod
    def build(cls, fin: str, year: int, sequence: str) -> ChainOfIdentityId:
        validate_fin(fin)
        if not 0 <= year <= 99:
            raise InvalidIdentifier(f"COI nominal year {year!r}: expected 0..99")
        if not _COI_SEQUENCE_RE.fullmatch(sequence):
            raise InvalidIdentifier(f"COI sequence {sequence!r}: expected 6 of A-Z/0-9")
        return cls(f"CH{fin}{year:02d}{sequence}")

    @property
    def fin(self) -> str:
        return self.value[2:7]

    @property
    def data_content(self) -> str:
        """Bar-coded data content: data identifier ``&/`` + the 15 characters."""
        return f"{_DS040_IDENTIFIER}{self.value}"

    @property
    def eye_readable(self) -> str:
        return f"{self.value[:2]} {self.value[2:7]} {self.value[7:9]} {self.value[9:]}"

    @classmethod
    def parse_scan(cls, text: str) -> ChainOfIdentityId:
        raw = text.strip()
        if raw.startswith(_DS040_IDENTIFIER):
            raw = raw[2:]
        compact = raw.replace(" ", "").upper()
        try:
            return cls(compact)
        except InvalidIdentifier as exc:
            raise InvalidScan(f"scan {text!r}: {exc.message}") from None

    def __str__(self) -> str:
        return self.value


ScannedIdentity = Din | ChainOfIdentityId


def parse_scan(text: str) -> ScannedIdentity:
    """Read whatever was scanned: a DIN (any form) or a chain-of-identity identifier."""
    raw = text.strip()
    compact = raw.replace(" ", "").upper()
    if raw.startswith(_DS040_IDENTIFIER) or compact.startswith("CH"):
        return ChainOfIdentityId.parse_scan(raw)
    if not raw:
        raise InvalidScan("scan '': nothing was scanned")
    return Din.parse_scan(raw)


def encode_base36(number: int, width: int) -> str:
    """``number`` in base 36 (0-9, A-Z), left-padded to ``width`` characters."""
    if number < 0 or number >= 36**width:
        raise InvalidIdentifier(f"sequence {number!r}: expected 0..{36**width - 1}")
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


class SequenceAllocator(Protocol):
    """Gives the next unused sequence number for a (kind, FIN, year); never the same twice.

    The store's implementation also holds a unique constraint on (kind, FIN, year, sequence).
    """

    def next_sequence(self, kind: str, fin: str, year: int) -> int: ...


class IdentifierIssuer:
    """Issues DINs and COI identifiers under configured FINs from a sequence allocator."""

    def __init__(self, allocator: SequenceAllocator) -> None:
        self._allocator = allocator

    def issue_din(self, fin: str, year: int) -> Din:
        validate_fin(fin)
        sequence = self._allocator.next_sequence("DIN", fin, year % 100)
        return Din.build(fin, year % 100, sequence)

    def issue_coi(self, fin: str, year: int) -> ChainOfIdentityId:
        validate_fin(fin)
        sequence = self._allocator.next_sequence("COI", fin, year % 100)
        return ChainOfIdentityId.build(fin, year % 100, encode_base36(sequence, 6))
