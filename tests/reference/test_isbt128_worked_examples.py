"""ISBT 128 identifiers against the worked examples of the primary sources.

See shared/reference/isbt128.md: ICCBBA ST-001 appendix A.1 and the UK blood services'
Red Book, annex 2.
"""

from __future__ import annotations

import pytest

from vein2vein.domain.identity import Din, check_character, mod37_2_checksum


@pytest.mark.parametrize(
    ("din", "checksum", "k", "flags"),
    [
        ("G123417654321", 10, "A", "70"),  # ST-001 appendix A.1
        ("G123498654321", 17, "H", "77"),  # UK Red Book, annex 2
    ],
)
def test_the_worked_examples_of_the_standard_give_their_k_and_flags(
    din: str, checksum: int, k: str, flags: str
) -> None:
    assert mod37_2_checksum(din) == checksum
    assert check_character(din) == k
    assert Din(din).type3_flags == flags


def test_the_appendix_example_reads_and_prints_in_every_form() -> None:
    din = Din("G123417654321")
    assert din.eye_readable == "G1234 17 654321 A"
    assert din.data_content() == "=G12341765432100"
    assert din.data_content(din.type3_flags) == "=G12341765432170"
    assert (din.fin, din.year, din.sequence) == ("G1234", "17", "654321")
