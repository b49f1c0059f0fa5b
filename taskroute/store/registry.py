"""A store from a URL: `NAME:LOCATION`, the name registered in `taskroute.plugins.STORES`.

A store kind is a factory `(url) -> Store` receiving the URL as written; the built-in
`sqlite:PATH` (`sqlite.build`) and a plugin's entry point in the `taskroute.stores` group
alike. The factory raises ValueError, in a plain sentence, for a location it cannot use.
"""

from __future__ import annotations

from collections.abc import Callable

from taskroute.plugins import STORES, open_url
from taskroute.store.base import Store

StoreFactory = Callable[[str], Store]


def open_store(url: str) -> Store:
    """The store `url` names (`ConfigError` when unknown, unusable or its plugin is broken)."""
    store: Store = open_url(STORES, url, "sqlite:log.db")
    return store
