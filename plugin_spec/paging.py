"""Pagers: how :meth:`plugin_spec.http.JsonApi.pages` asks a channel for the next page.

Channels page in different ways, and they are not equally safe when orders change while a
listing is read (an order updated after page 1 moves to the end of a list sorted by update
time):

* :class:`NextLink` (the default): follow the page's ``next`` link. Safe when the link is a
  keyset cursor ("after this key"), as Back Market's are; a link carrying a page number is as
  unsafe as an offset. The only pager that prefetches and takes a ``read_page`` reader.
* :class:`Offset`: ``limit``/``offset``. **Unsafe on a set that can change while it is read**:
  an order read on page 1 that changes moves to the end, every later order shifts one place
  back, and the one that slides into the offsets already read is never seen.
* :class:`PageToken`: an opaque token from the body, sent back as a query parameter. As safe as
  the channel's token: many tokens are an offset in disguise.
* :class:`Keyset`: asks again with the modified-date filter moved up to the last stamp read,
  over the channel's own offset or token paging. Safe on a changing set: an order that changes
  gets a newer stamp, so it is read later, never skipped.

A pager is a frozen dataclass (one per client is enough); the state of one listing lives in its
``walk`` generator. Pagers other than :class:`NextLink` do not prefetch: each of their
requests depends on the page before it having been read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Any

from .errors import BadData, ChannelError, TransientError

__all__ = ["Keyset", "Listing", "NextLink", "Offset", "PageToken", "Pager", "dig"]

Params = dict[str, str]


def dig(body: Any, path: str) -> Any:
    """``body["a"]["b"]`` for the dotted ``path`` ``"a.b"`` (a key holding the dot itself wins);
    None when a step is missing or not an object."""
    if isinstance(body, dict) and path in body:
        return body[path]
    value = body
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


@dataclass(frozen=True)
class Listing:
    """What a pager needs from the :class:`~plugin_spec.http.JsonApi` it pages for."""

    #: one GET of the listing's path with these query parameters: the parsed JSON body
    get: Callable[[Params], Any]
    #: the (dotted) field holding a page's items
    results: str
    id_of: Callable[[Any], Any]
    #: what a page is, for messages ("an order listing page")
    what: str
    channel: str
    max_pages: int
    #: the message for a body of the wrong shape
    unexpected: Callable[[str, Any], str]
    #: ``(HTTP status, error code)`` of a definitive refusal (``Rejected``), None for other errors
    refusal: Callable[[ChannelError], tuple[int, str | None] | None]

    def items(self, body: Any) -> list[Any]:
        items = dig(body, self.results)
        if not isinstance(items, list):
            raise BadData(self.unexpected(self.what, body))
        return items

    def ids(self, items: list[Any]) -> set[Any]:
        return {_hashable(self.id_of(item)) for item in items}

    def no_progress(self, how: str) -> BadData:
        return BadData(
            f"{self.channel} sent a page with no new orders and {how}; "
            "stopping so the listing cannot loop forever. Try again later."
        )

    def too_many_pages(self) -> BadData:
        return BadData(
            f"{self.channel} sent more than {self.max_pages} pages in one listing; "
            "stopping so the listing cannot loop forever."
        )


@dataclass(frozen=True)
class NextLink:
    """Follow the (dotted) ``field`` of each page, a URL, until it is null.

    Safe when the link is a keyset cursor (it names the last key read, not a position), as
    ``ApiSandbox.page`` serves it; a link carrying a page number or an offset is as unsafe as
    :class:`Offset`. The link is followed only to the API's own origin, never twice,
    and only while pages bring new items. The next page is prefetched while the caller works
    on this one, and ``read_page`` readers work with it. ``JsonApi`` runs it itself.
    """

    field: str = "next"


@dataclass(frozen=True)
class Offset:
    """``limit``/``offset`` paging: ``page_size`` items from ``offset``, until a short or empty
    page, or until ``total_field`` (a dotted path to the count of matching items) is reached.

    **Unsafe when the set can change while it is read.** Sorted by update time, an order read
    on an early page that changes moves to the end; every order after it shifts one place
    back and the one sliding into the offsets already read is skipped, silently. Use it alone
    only for sets that cannot change (a finished day's report), or inside :class:`Keyset`.
    Without ``total_field`` a short page ends the listing, so ``page_size`` must not exceed
    the most the channel sends in one page.
    """

    limit_param: str = "limit"
    offset_param: str = "offset"
    _: KW_ONLY
    page_size: int = 100
    total_field: str | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")

    def request(self, params: Params, offset: int) -> Params:
        return {**params, self.limit_param: str(self.page_size), self.offset_param: str(offset)}

    def more(self, body: Any, count: int, offset: int) -> bool:
        """Whether the query holds items after the ``count`` ones read at ``offset``."""
        if count == 0:
            return False
        total = dig(body, self.total_field) if self.total_field else None
        if isinstance(total, int) and not isinstance(total, bool):
            return offset + count < total
        return count >= self.page_size

    def walk(self, listing: Listing, params: Params) -> Iterator[list[Any]]:
        offset, seen = 0, set[Any]()
        for page in range(1, listing.max_pages + 1):
            body = listing.get(self.request(params, offset))
            items = listing.items(body)
            more = self.more(body, len(items), offset)
            ids = listing.ids(items)
            if more and page > 1 and not ids - seen:
                raise listing.no_progress("another offset to read")
            seen |= ids
            yield items
            if not more:
                return
            offset += len(items)
        raise listing.too_many_pages()


@dataclass(frozen=True)
class PageToken:
    """An opaque token read from each page's ``token_field`` (a dotted path such as
    ``pagination.nextToken``) and sent back as the query parameter ``param``, with the first
    request's parameters (``keep_params=True``, as Amazon SP-API wants) or alone.

    As safe as the channel's token: a cursor ("after this key") is safe on a changing set, a
    position (many tokens are an offset in disguise) is as unsafe as :class:`Offset`; when in
    doubt, wrap it in :class:`Keyset`. A token seen twice, or a page bringing no new item with
    another token, stops the listing with ``BadData``.

    Tokens that expire: a token older than ``expires_after`` seconds is not sent, and an
    answer with HTTP ``expired_status`` and an error code in ``expired_codes`` means the
    channel refused it as expired. Alone, either raises ``TransientError`` (the download runs
    again later); inside :class:`Keyset` the listing restarts from its last stamp.
    """

    token_field: str
    param: str
    _: KW_ONLY
    keep_params: bool = True
    expires_after: float | None = None
    expired_codes: frozenset[str] = frozenset()
    expired_status: int = 400

    def request(self, params: Params, token: str | None) -> Params:
        if token is None:
            return dict(params)
        return {**params, self.param: token} if self.keep_params else {self.param: token}

    def token_of(self, listing: Listing, body: Any) -> str | None:
        raw = dig(body, self.token_field)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise BadData(f"{listing.channel} sent a page token that is not text.")
        return raw

    def stale(self, received: float) -> bool:
        return self.expires_after is not None and time.monotonic() - received > self.expires_after

    def refused_as_expired(self, listing: Listing, exc: ChannelError) -> bool:
        refusal = listing.refusal(exc)
        return refusal is not None and refusal[0] == self.expired_status and refusal[1] in self.expired_codes

    def expired(self, listing: Listing) -> TransientError:
        return TransientError(
            f"{listing.channel}'s page token expired before the next page was read; "
            "the download starts again on its next run."
        )

    def walk(self, listing: Listing, params: Params) -> Iterator[list[Any]]:
        token: str | None = None
        received = 0.0
        tokens, seen = set[str](), set[Any]()
        for page in range(1, listing.max_pages + 1):
            if token is not None and self.stale(received):
                raise self.expired(listing)
            try:
                body = listing.get(self.request(params, token))
            except ChannelError as exc:
                if token is not None and self.refused_as_expired(listing, exc):
                    raise self.expired(listing) from None
                raise
            received = time.monotonic()
            items = listing.items(body)
            token = self.token_of(listing, body)
            ids = listing.ids(items)
            if token is not None and page > 1 and not ids - seen:
                raise listing.no_progress("another page token")
            seen |= ids
            repeated = token is not None and token in tokens
            if token is not None:
                tokens.add(token)
            yield items
            if token is None:
                return
            if repeated:  # raised after its page, which the caller has by then
                raise BadData(f"{listing.channel} sent the same page token twice; stopping to avoid an endless loop.")
        raise listing.too_many_pages()


@dataclass(frozen=True)
class Keyset:
    """Keyset paging over a modified-date filter: after each page the listing asks again with
    ``filter_param`` set to ``format_stamp(stamp)`` of the last item read, dropping the items
    read already. ``key(item)`` gives an item's ``(modified stamp, id)``; stamps must compare
    in the channel's sort order (datetimes, or ISO text of one format). Asking again keeps
    offsets small, which matters where a channel caps them (eBay: 10,000).

    Safe on a changing set: an order that changes during the download gets a newer stamp, so
    it is read again later with its new stamp, never skipped. Requirements on the channel: the
    filter is inclusive (``>=``), the list is sorted by stamp ascending and, within one stamp,
    in an order that does not change (by id), and no new item appears with a stamp already
    passed (a channel stamping with a coarse clock needs a safety lag in ``since``). A filter
    coarser than the stamps (whole seconds) is fine: the items before the last stamp are
    dropped, and while the formatted filter stays the same the query goes on as below.

    An item counts as read when its stamp is older than the last stamp read, or equal with its
    id among the ids kept for that stamp, so items sharing a stamp across a page boundary are
    neither lost nor repeated. When a page ends at the stamp the listing already asks from (a
    whole page at one stamp), asking again would bring that page back, so the listing goes on
    within the query with the ``within`` pager:

    * :class:`Offset`: the next offset overlaps the last page by one item, and that page must
      begin with an item already read. Only items already read can leave the part of the
      query before the offset (by changing; nothing joins a stamp passed), so when it does
      not, unread items may have shifted back over the offset: the query is read again from
      its first page (the repeats are dropped), never skipping one; if that happens more than
      three times without a new item, ``TransientError``. ``page_size`` must be at least 2.
    * :class:`PageToken`: the channel's token, as safe as the token is within one stamp (a
      token that is a position can skip an order when one read at that stamp changes). An
      expired token starts the query again from its first page, likewise; a token expiring
      again before a new item is read is ``TransientError``.

    A page with more to come that brings only items met since the query's first page, or a
    page not sorted by stamp, stops the listing with ``BadData``. An item whose key cannot be
    read is yielded once and does not move the filter.
    """

    within: Offset | PageToken
    _: KW_ONLY
    key: Callable[[Any], tuple[Any, Any]]
    filter_param: str
    format_stamp: Callable[[Any], str] = str

    def __post_init__(self) -> None:
        if isinstance(self.within, Offset) and self.within.page_size < 2:
            raise ValueError("Keyset over Offset needs page_size >= 2: each next page overlaps the last by one item")

    def walk(self, listing: Listing, params: Params) -> Iterator[list[Any]]:
        return _KeysetWalk(self, listing, params).pages()


_NO_KEY = object()
#: an offset walk within one stamp starts again at most this often without a new item
_MAX_STEPS_BACK = 3


class _KeysetWalk:
    """The state of one :class:`Keyset` listing."""

    def __init__(self, keyset: Keyset, listing: Listing, params: Params):
        self.keyset, self.listing, self.params = keyset, listing, dict(params)
        self.query = dict(params)
        #: every item modified before ``stamp`` has been read; ``at_stamp``: the ids read at it
        self.stamp: Any = None
        self.at_stamp: set[Any] = set()
        #: items whose key cannot be read, yielded once each
        self.keyless: set[str] = set()
        #: an expired token restarts the query; a second time only after a new item
        self.restarted = self.fresh_since_restart = False

    def key(self, item: Any) -> Any:
        try:
            stamp, ident = self.keyset.key(item)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return _NO_KEY
        return stamp, _hashable(ident)

    def read(self, item: Any) -> bool:
        key = self.key(item)
        if key is _NO_KEY:
            return repr(item) in self.keyless
        stamp, ident = key
        return self.stamp is not None and (stamp < self.stamp or (stamp == self.stamp and ident in self.at_stamp))

    def remember(self, items: list[Any]) -> bool:
        """Mark ``items`` read; True when the last stamp read is newer than before."""
        keys = [key for key in map(self.key, items) if key is not _NO_KEY]
        self.keyless |= {repr(item) for item in items if self.key(item) is _NO_KEY}
        if not keys:
            return False
        if any(later[0] < earlier[0] for earlier, later in zip(keys, keys[1:], strict=False)):
            raise BadData(
                f"{self.listing.channel} sent a page not sorted by modification time; it cannot be paged safely."
            )
        last = keys[-1][0]
        if self.stamp is None or last > self.stamp:
            self.stamp, self.at_stamp = last, {ident for stamp, ident in keys if stamp == last}
            return True
        self.at_stamp |= {ident for stamp, ident in keys if stamp == self.stamp}
        return False

    def pages(self) -> Iterator[list[Any]]:
        within, listing = self.keyset.within, self.listing
        #: where the query goes on: the offset (Offset) or the token (PageToken) of its next page
        offset, token = 0, None
        received = 0.0
        #: ids met since the query was last asked from its first page: a page of only these loops
        walked: set[Any] = set()
        steps_back = 0
        for _ in range(listing.max_pages):
            if isinstance(within, PageToken) and token is not None and within.stale(received):
                token = None
                self.restart(within)
                walked.clear()
            request = (
                within.request(self.query, offset) if isinstance(within, Offset) else within.request(self.query, token)
            )
            try:
                body = listing.get(request)
            except ChannelError as exc:
                if isinstance(within, PageToken) and token is not None and within.refused_as_expired(listing, exc):
                    token = None
                    self.restart(within)
                    walked.clear()
                    continue
                raise
            received = time.monotonic()
            items = listing.items(body)
            if isinstance(within, Offset) and offset > 0 and not self.begins_with_a_read_item(items):
                # an item read before this offset changed and left its place: unread ones may
                # have shifted back over the offset, so the query is read again from its start
                steps_back += 1
                if steps_back > _MAX_STEPS_BACK:
                    raise TransientError(
                        f"{listing.channel}'s orders kept changing while they were read; try again later."
                    )
                offset = 0
                walked.clear()
                continue
            fresh = [item for item in items if not self.read(item)]
            # a filter coarser than the stamps (whole seconds) may not move: the same query goes on
            moved = self.remember(items) and self.filter() != self.query.get(self.keyset.filter_param)
            if isinstance(within, Offset):
                more = within.more(body, len(items), offset)
                offset = 0 if moved else offset + len(items) - 1
            else:
                following = within.token_of(listing, body)
                more = following is not None
                token = None if moved else following
            ids = listing.ids(items)
            if more and not moved and ids <= walked:
                raise listing.no_progress("another page to read")
            walked = set() if moved else walked | ids
            if fresh:
                steps_back = 0
                self.fresh_since_restart = True
                yield fresh
            if not more:
                return
            if moved:
                self.query = {**self.params, self.keyset.filter_param: self.filter()}
        raise listing.too_many_pages()

    def filter(self) -> str:
        return self.keyset.format_stamp(self.stamp)

    def begins_with_a_read_item(self, items: list[Any]) -> bool:
        return bool(items) and self.read(items[0])

    def restart(self, within: PageToken) -> None:
        """Back to the query's first page after a token expired, once per progress made."""
        if self.restarted and not self.fresh_since_restart:
            raise within.expired(self.listing)
        self.restarted, self.fresh_since_restart = True, False


#: what ``JsonApi.pages(pager=...)`` takes
Pager = NextLink | Offset | PageToken | Keyset
