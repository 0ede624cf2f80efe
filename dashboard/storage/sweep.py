"""Find and remove stored objects no row points at (orphans).

Writes put the object first and the row second, and clean up after themselves when
the row fails; a crash between the two, or a failed delete after a row is gone, can
still leave an object behind. This sweep finds them. It never needs to read a whole
table: each key names its row (`voices/system/{id}`, `voices/orgs/{org}/{id}[.{rev}]`,
`generations/orgs/{org}/{id}[.{attempt}]`), so a batch of keys is checked with one
primary-key lookup per table. Objects younger than the grace period are left alone, since their
row may simply not be committed yet. Readiness probe objects (`{prefix}/probe/{uuid}`,
see `dashboard.health`) belong to no row: one a crash left behind is an orphan.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Generation, Voice, utcnow
from dashboard.storage.base import ObjectNotFound, Storage
from dashboard.storage.keys import TOP_LEVEL_FOLDERS, is_probe_key, row_of

BATCH = 500
# The models whose rows keys name, by the table `keys.row_of` reads from a key.
_MODELS: dict[str, type] = {model.__tablename__: model for model in (Voice, Generation)}


@dataclass(slots=True)
class SweepReport:
    """What a sweep looked at and found."""

    scanned: int = 0
    referenced: int = 0
    unrecognised: list[str] = field(default_factory=list)
    too_new: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def owner_of(key: str) -> tuple[type, uuid.UUID] | None:
    """Return the model and row id a key belongs to, or None for keys Voxboard never makes."""
    if row := row_of(key):
        return _MODELS[row[0]], row[1]
    return None


def _batches(keys: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _referenced(keys: list[str]) -> set[str]:
    """Return which of `keys` a row's `audio_key` names (one query per table)."""
    ids: dict[type, set[uuid.UUID]] = {Voice: set(), Generation: set()}
    for key in keys:
        if owner := owner_of(key):
            ids[owner[0]].add(owner[1])
    found: set[str] = set()
    for model, wanted in ids.items():
        if wanted:
            rows = db.session.scalars(select(model.audio_key).where(model.id.in_(wanted)))
            found.update(k for k in rows if k)
    return found


def find_orphans(
    storage: Storage, older_than: dt.timedelta, now: dt.datetime | None = None
) -> SweepReport:
    """List objects no row points at and that are older than `older_than`.

    Runs across organisations: call it inside `operator_access(...)`.
    """
    cutoff = (now or utcnow()) - older_than
    report = SweepReport()
    for folder in TOP_LEVEL_FOLDERS:
        for batch in _batches(storage.list_keys(f"{folder}/"), BATCH):
            report.scanned += len(batch)
            referenced = _referenced(batch)
            report.referenced += len(referenced)
            for key in batch:
                if key in referenced:
                    continue
                if owner_of(key) is None and not is_probe_key(key):
                    report.unrecognised.append(key)
                    continue
                try:
                    modified = storage.stat(key).modified
                except ObjectNotFound:
                    continue  # deleted meanwhile
                if modified is None or modified > cutoff:
                    report.too_new.append(key)
                else:
                    report.orphans.append(key)
    return report


def delete_orphans(storage: Storage, report: SweepReport) -> None:
    """Delete `report.orphans`, re-checking each batch's references first."""
    for batch in _batches(report.orphans, BATCH):
        still_referenced = _referenced(batch)
        for key in batch:
            if key not in still_referenced:
                storage.delete(key)
                report.deleted.append(key)
