"""Twilio list paging: PageSize/Page/PageToken parsing, slicing, and 2010 vs v1 page envelopes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from .errors import ApiError

T = TypeVar("T")
PAGING_KEYS = frozenset({"PageSize", "Page", "PageToken"})
DEFAULT_PAGE_SIZE = 50
# Tokens name the boundary record: PA<sid> = "after this one", PB<sid> = "before this one".
NEXT_PREFIX, PREV_PREFIX = "PA", "PB"


@dataclass
class PageRequest:
    page_size: int
    page: int
    token: str | None


@dataclass
class PageSlice(Generic[T]):
    items: list[T]
    request: PageRequest
    start: int
    next_token: str | None
    prev_token: str | None

    @property
    def end(self) -> int:
        # Twilio reports end == start for an empty page (see the spec's readEmpty example).
        return self.start + max(len(self.items) - 1, 0)


def _int_param(params: QueryParams, name: str, default: int, low: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {name} value: {raw}", 20001) from exc
    if value < low:
        raise ApiError(400, f"Invalid {name} value: {raw}", 20001)
    return value


def page_request(params: QueryParams, max_size: int, default: int = DEFAULT_PAGE_SIZE) -> PageRequest:
    """PageSize above the API's maximum is clamped rather than refused."""
    size = min(_int_param(params, "PageSize", default, 1), max_size)
    return PageRequest(size, _int_param(params, "Page", 0, 0), params.get("PageToken") or None)


def _start_and_stop(sids: list[str], req: PageRequest) -> tuple[int, int]:
    token = req.token or ""
    boundary = token[2:]
    if token.startswith(NEXT_PREFIX) and boundary in sids:
        start = sids.index(boundary) + 1
        return start, start + req.page_size
    if token.startswith(PREV_PREFIX) and boundary in sids:
        stop = sids.index(boundary)
        return max(stop - req.page_size, 0), stop
    # No (or stale) token: plain offset paging by page number.
    start = req.page * req.page_size
    return start, start + req.page_size


def slice_page(items: Sequence[T], sid_of: Callable[[T], str], req: PageRequest) -> PageSlice[T]:
    sids = [sid_of(item) for item in items]
    start, stop = _start_and_stop(sids, req)
    chosen = list(items[start:stop])
    next_token = NEXT_PREFIX + sids[stop - 1] if chosen and stop < len(items) else None
    prev_token = PREV_PREFIX + sids[start] if chosen and start > 0 else None
    return PageSlice(chosen, req, start, next_token, prev_token)


def _link(base_path: str, filters: list[tuple[str, str]], size: int, page: int, token: str | None) -> str:
    query = [*filters, ("PageSize", str(size)), ("Page", str(page))]
    if token:
        query.append(("PageToken", token))
    return f"{base_path}?{urlencode(query)}"


def _links(base_path: str, params: QueryParams, sl: PageSlice[Any]) -> dict[str, str | None]:
    filters = [(k, v) for k, v in params.multi_items() if k not in PAGING_KEYS]
    req = sl.request
    return {
        "self": _link(base_path, filters, req.page_size, req.page, req.token),
        "first": _link(base_path, filters, req.page_size, 0, None),
        "next": _link(base_path, filters, req.page_size, req.page + 1, sl.next_token)
        if sl.next_token else None,
        "previous": _link(base_path, filters, req.page_size, max(req.page - 1, 0), sl.prev_token)
        if sl.prev_token else None,
    }


def envelope_2010(path: str, params: QueryParams, sl: PageSlice[Any], records: list[Any],
                  key: str = "recordings") -> dict[str, Any]:
    """The 2010-04-01 list page: flat fields and RELATIVE *_uri links."""
    links = _links(path, params, sl)
    return {
        "first_page_uri": links["first"], "end": sl.end, "previous_page_uri": links["previous"],
        key: records, "uri": links["self"], "page_size": sl.request.page_size,
        "start": sl.start, "next_page_uri": links["next"], "page": sl.request.page,
    }


def envelope_v1(url: str, params: QueryParams, sl: PageSlice[Any], records: list[Any],
                key: str) -> dict[str, Any]:
    """The v1 list page: records under `key` and a `meta` block of ABSOLUTE *_url links."""
    links = _links(url, params, sl)
    meta = {
        "page": sl.request.page, "page_size": sl.request.page_size,
        "first_page_url": links["first"], "previous_page_url": links["previous"],
        "url": links["self"], "next_page_url": links["next"], "key": key,
    }
    return {key: records, "meta": meta}
