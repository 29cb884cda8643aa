"""Pages read so far: the toolkit says when a listing page arrives, the host counts them.

The host runs a download inside ``counting(on_page)``; :meth:`plugin_spec.http.JsonApi.pages`
calls :func:`page_read` for each page it yields, so a plugin built on the toolkit reports its
pages without a line of its own. A plugin that pages by itself may call ``page_read(n)`` after
each page of ``n`` orders; one that does not simply shows no page count. Outside ``counting``
(a plugin's own tests, a script) ``page_read`` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["counting", "page_read"]

_current: ContextVar[Callable[[int], None] | None] = ContextVar("cartplugin_pages", default=None)


@contextmanager
def counting(on_page: Callable[[int], None]) -> Iterator[None]:
    """Within the block, each :func:`page_read` calls ``on_page(items on that page)``."""
    token = _current.set(on_page)
    try:
        yield
    finally:
        _current.reset(token)


def page_read(items: int) -> None:
    """A listing page of ``items`` orders has arrived (call it before handing them out)."""
    on_page = _current.get()
    if on_page is not None:
        on_page(items)
