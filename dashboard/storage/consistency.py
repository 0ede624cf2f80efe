"""Keep object storage and the database in step when a write fails half-way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from dashboard.storage.base import Storage, StorageError

log = logging.getLogger(__name__)


@contextmanager
def new_objects_removed_on_error(storage: Storage) -> Iterator[list[str]]:
    """Yield a list to record newly written keys in; delete them if the block raises.

    Writes go object first, row second: if the row never commits, the objects it
    would have pointed at are removed here. A delete that fails too is logged and
    left for `flask storage sweep`, never allowed to hide the original error.
    """
    written: list[str] = []
    try:
        yield written
    except BaseException:
        for key in written:
            try:
                storage.delete(key)
            except StorageError:
                log.warning("could not remove orphan object %s; a sweep will", key)
        raise
