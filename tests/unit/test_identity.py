"""ISBT 128 identifiers against the standard's worked examples and its rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vein2vein.domain.errors import InvalidIdentifier, InvalidScan
from vein2vein.domain.identity import (
    ChainOfIdentityId,
    Din,
    IdentifierIssuer,
    mod37_2_checksum,
    parse_scan,
)


@pytest.mark.parametrize(
    "bad",
    [
        "O123417654321",  # letter O never starts a FIN
        "0123417654321",  # nor does 0
        "G12A417654321",  # FIN characters 4-5 are digits
        "G1234176543210",  # 14 characters
        "G12341765432",  # 12 characters
        "g123417654321",  # lower case
        "GO23417654321",  # O is not allowed anywhere in the FIN
    ],
)
def test_a_malformed_din_is_refused_with_its_value_named(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match=repr(bad)):
        Din(bad)


def test_a_din_is_a_value_error_for_callers_that_know_nothing_of_vein2vein() -> None:
    with pytest.raises(ValueError):
        Din("nonsense")


@pytest.mark.parametrize(
    "scan",
    [
        "G123417654321",
        "G1234 17 654321 A",
        "=G12341765432170",
        "=G12341765432100",
        " g1234 17 654321 a ",
    ],
)
def test_every_printed_and_bar_coded_form_of_a_din_reads_back_as_the_din(scan: str) -> None:
    assert parse_scan(scan) == Din("G123417654321")


@pytest.mark.parametrize(
    ("scan", "why"),
    [
        ("G1234 17 654321 B", "check character 'B' does not match"),
        ("=G12341765432171", "type 3 flags 71 do not match"),
        ("=G123417654321", "expected '=' \\+ 13 DIN characters \\+ 2 flag characters"),
        ("=G123417654321I0", "flags 'I0' are not ISBT 128 flags"),
        ("=G12341765432197", "flags 97 are reserved by ICCBBA"),
        ("=G12341765432114", "flags 14 are reserved by ICCBBA"),
        ("=G123417654321AA", "flags AA are reserved by ICCBBA"),
        ("G12341765432I", "^DIN scan 'G12341765432I': expected 13 characters"),
        ("", "nothing was scanned"),
    ],
)
def test_a_misread_scan_is_refused_and_says_why(scan: str, why: str) -> None:
    with pytest.raises(InvalidScan, match=why):
        parse_scan(scan)


def test_the_chain_of_identity_identifier_follows_data_structure_040() -> None:
    coi = ChainOfIdentityId.build("G1234", 26, "00A1Z9")
    assert coi.value == "CHG12342600A1Z9"
    assert coi.data_content == "&/CHG12342600A1Z9"
    assert parse_scan("&/CHG12342600A1Z9") == coi
    assert parse_scan("CH G1234 26 00A1Z9") == coi
    with pytest.raises(InvalidIdentifier):
        ChainOfIdentityId("CHG12342600a1z9")  # lower case is not in the sequence alphabet
    with pytest.raises(InvalidIdentifier):
        ChainOfIdentityId("CXG12342600A1Z9")


class _Counter:
    def __init__(self) -> None:
        self.last: dict[tuple[str, str, int], int] = {}

    def next_sequence(self, kind: str, fin: str, year: int) -> int:
        key = (kind, fin, year)
        self.last[key] = self.last.get(key, 0) + 1
        return self.last[key]


def test_the_issuer_numbers_dins_per_fin_and_year_and_cois_in_base_36() -> None:
    issuer = IdentifierIssuer(_Counter())
    assert issuer.issue_din("A9999", 2026).value == "A999926000001"
    assert issuer.issue_din("A9999", 2026).value == "A999926000002"
    assert issuer.issue_din("G1234", 2026).value == "G123426000001"
    assert issuer.issue_din("A9999", 2027).value == "A999927000001"
    assert issuer.issue_coi("G1234", 2026).value == "CHG123426000001"
    with pytest.raises(InvalidIdentifier, match="FIN 'O1234'"):
        issuer.issue_din("O1234", 2026)


_DIN_CHARS = st.from_regex(r"\A[A-NP-Z1-9][A-NP-Z0-9]{2}[0-9]{2}[0-9]{2}[0-9]{6}\Z")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(_DIN_CHARS, st.integers(0, 12), st.sampled_from(_ALPHABET))
def test_every_single_character_substitution_changes_k(din: str, i: int, ch: str) -> None:
    altered = din[:i] + ch + din[i + 1 :]
    if altered != din:
        assert mod37_2_checksum(altered) != mod37_2_checksum(din)


@given(_DIN_CHARS, st.integers(0, 11))
def test_every_adjacent_transposition_changes_k(din: str, i: int) -> None:
    swapped = din[:i] + din[i + 1] + din[i] + din[i + 2 :]
    if swapped != din:
        assert mod37_2_checksum(swapped) != mod37_2_checksum(din)
