"""The one byte range the media route serves: what is honoured and what is answered 416."""

from __future__ import annotations

import pytest

from console import byte_range


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-0", (0, 0)), ("bytes=10-19", (10, 19)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)),
    ("bytes=-500", (0, 99)), ("bytes=90-5000", (90, 99)), (" bytes = 1 - 2 ", (1, 2)),
])
def test_one_range_is_honoured_within_the_file(header: str, expected: tuple[int, int]) -> None:
    assert byte_range.parse(header, 100) == expected


@pytest.mark.parametrize("header", [
    "bytes=0-1,5-6", "bytes=0-1, 0-1", "bytes=100-", "bytes=100-200", "bytes=9-3", "bytes=-0", "bytes=-", "bytes=",
    "bytes=abc", "items=0-1", "0-1", "bytes=1-2-3", "bytes=0x10-", f"bytes={'9' * 30}-",
])
def test_several_ranges_or_a_bad_one_is_unsatisfiable(header: str) -> None:
    with pytest.raises(byte_range.Unsatisfiable):
        byte_range.parse(header, 100)


def test_an_empty_file_has_no_range() -> None:
    with pytest.raises(byte_range.Unsatisfiable):
        byte_range.parse("bytes=0-", 0)


def test_if_range_honours_the_range_only_for_the_file_as_it_is() -> None:
    etag, modified = '"abc"', "Fri, 27 Nov 2026 18:00:00 GMT"
    assert byte_range.applies(None, etag, modified)
    assert byte_range.applies('"abc"', etag, modified) and byte_range.applies(modified, etag, modified)
    assert not byte_range.applies('"old"', etag, modified)
    assert not byte_range.applies('W/"abc"', etag, modified)  # a weak validator never matches strongly
