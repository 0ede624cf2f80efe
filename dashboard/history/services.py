"""Delete generations and stream them as a ZIP. Functions here flush; the caller commits.

Deletes go row first, object second: the caller commits the rows, then hands the keys
to `discard_objects`. If storage fails then, the rows are gone all the same and the
objects are orphans that `flask storage sweep` removes; a row never points at a
missing object. "Everything matching" is deleted in batches of `queries.BATCH_SIZE`,
each its own transaction, so a huge history is neither loaded nor locked at once.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import zipstream
from sqlalchemy import delete

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.history import queries
from dashboard.history.queries import Selection
from dashboard.models import Generation, GenerationStatus
from dashboard.storage import CHUNK_SIZE, ObjectNotFound, Storage, StorageError

log = logging.getLogger(__name__)

SLUG_MAX = 40
# The manifest stays in memory up to this size, then spills to a temporary file.
MANIFEST_IN_MEMORY = 1024 * 1024
MANIFEST_FIELDS = (
    "file",
    "id",
    "created_at",
    "voice",
    "text",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "duration_seconds",
    "note",
)
ZIP_COLUMNS = (
    Generation.voice_name,
    Generation.text,
    Generation.temperature,
    Generation.top_p,
    Generation.top_k,
    Generation.repetition_penalty,
    Generation.duration_ms,
    Generation.audio_key,
    Generation.audio_size,
)
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class NothingToDownload(Exception):
    """None of the selected generations has finished audio."""


# ----------------------------------------------------------------------- deleting


@dataclass(frozen=True, slots=True)
class DeletedBatch:
    """One batch of deleted rows: how many, and the objects to discard after the commit."""

    count: int
    keys: Sequence[str]


def delete_generation(generation: Generation) -> str | None:
    """Delete one generation's row (flush); return its audio key to discard after the commit."""
    key = generation.audio_key
    db.session.delete(generation)
    db.session.flush()
    return key


def delete_selected(org_id: uuid.UUID, selection: Selection) -> Iterator[DeletedBatch]:
    """Delete the selected generations batch by batch; flush each and yield what went.

    Commit after each batch before asking for the next, then discard its keys:

        for batch in delete_selected(org_id, selection):
            db.session.commit()
            discard_objects(storage, batch.keys)

    One DELETE … WHERE id IN (…) per batch; RETURNING gives the keys of exactly the
    rows deleted, so a job that stored audio a moment ago is not missed.
    """
    for rows in queries.selection_batches(org_id, selection, ()):
        keys = db.session.scalars(
            delete(Generation)
            .where(Generation.org_id == org_id, Generation.id.in_([r.id for r in rows]))
            .returning(Generation.audio_key)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.flush()
        yield DeletedBatch(len(keys), [key for key in keys if key])


def discard_objects(storage: Storage, keys: Iterable[str | None]) -> list[str]:
    """Delete objects no committed row points at any more; return the keys that failed.

    Called after the commit, so a failure is logged and left for `flask storage sweep`
    (an object nobody points at is only wasted space), never raised.
    """
    failed = []
    for key in keys:
        if key is None:
            continue
        try:
            storage.delete(key)
        except StorageError as exc:
            log.warning("could not delete generation audio %s (%s); left for a sweep", key, exc)
            failed.append(key)
    return failed


# ---------------------------------------------------------------------- ZIP download


def zip_stream(storage: Storage, org_id: uuid.UUID, selection: Selection) -> Iterator[bytes]:
    """Return a ZIP of the selection's finished audio, plus `manifest.csv`, as chunks.

    The archive is produced while it is sent: rows are read a batch at a time and
    each object is copied through chunk by chunk, so neither the files nor the archive
    are ever held whole. Only the first batch is read and the first object opened
    here, before any byte is sent, so an empty selection (NothingToDownload) or a
    storage outage (StorageError) can still be answered with a proper status. An
    object missing later is listed in the manifest with a note instead of a file.
    Iterate the result inside the request context (`stream_with_context`).
    """
    batches = queries.selection_batches(
        org_id,
        selection,
        ZIP_COLUMNS,
        Generation.status == GenerationStatus.SUCCEEDED,
        Generation.audio_key.is_not(None),
    )
    first_batch = next(batches, None)
    if first_batch is None:
        raise NothingToDownload("None of the selected generations has finished audio yet.")
    first_chunks = _open_object(storage, first_batch[0].audio_key)
    rows = itertools.chain.from_iterable(itertools.chain([first_batch], batches))
    scope = (org_id, tenancy.current_user_id())
    return _archive(storage, scope, rows, first_chunks)


def _archive(
    storage: Storage,
    scope: tuple[uuid.UUID, uuid.UUID | None],
    rows: Iterator,
    first_chunks: Iterator[bytes] | None,
) -> Iterator[bytes]:
    archive = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED)  # WAV barely deflates
    names: set[str] = set()
    # Flask tears the request down (its org scope, its session) before a streamed body
    # is read; `stream_with_context` restores the contexts but not the tenant scope, so
    # the later batches enter it again, the way a job for one org does.
    with (
        tenancy.org_scope(*scope),
        tempfile.SpooledTemporaryFile(max_size=MANIFEST_IN_MEMORY) as manifest,
    ):
        manifest.write(_csv_line(MANIFEST_FIELDS, bom=True))
        for n, row in enumerate(rows):
            chunks = first_chunks if n == 0 else _open_object(storage, row.audio_key)
            name, note = "", ""
            if chunks is None:
                note = "audio missing from storage"
            else:
                name = archive_name(row, names)
                archive.add(chunks, name, size=row.audio_size)
                try:
                    yield from archive.all_files()
                finally:
                    _close(chunks)
            manifest.write(_csv_line(_manifest_row(row, name, note)))
        size = manifest.tell()
        manifest.seek(0)
        archive.add(iter(lambda: manifest.read(CHUNK_SIZE), b""), "manifest.csv", size=size)
        yield from archive.finalize()


def _open_object(storage: Storage, key: str) -> Iterator[bytes] | None:
    """Open an object's bytes; None when it is missing (other storage errors raise)."""
    try:
        return storage.open_range(key)
    except ObjectNotFound:
        # A storage fault (the row says the bytes exist); the ZIP is already streaming,
        # so the file is left out and the manifest says so, and operators get the error.
        log.error("generation audio %s is missing from storage; left out of a ZIP", key)
        return None


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def archive_name(row, taken: set[str]) -> str:
    """Return a unique `.wav` name: when it was made, what it says, and a short id."""
    stamp = row.created_at.strftime("%Y-%m-%d_%H%M%S")
    name = f"{stamp}_{text_slug(row.text)}_{row.id.hex[-8:]}.wav"
    if name in taken:  # the short ids of two rows made in the same second collide
        name = f"{stamp}_{text_slug(row.text)}_{row.id.hex}.wav"
    taken.add(name)
    return name


def text_slug(text: str) -> str:
    """Return a short ASCII slug of `text` for a file name ("Hello, world!" → "hello-world")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        cut = slug[: SLUG_MAX + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut[:SLUG_MAX]  # whole words
    return slug.strip("-") or "generation"


def _manifest_row(row, name: str, note: str) -> list[str]:
    duration = f"{row.duration_ms / 1000:.3f}" if row.duration_ms is not None else ""
    return [
        name,
        str(row.id),
        row.created_at.isoformat(),
        _spreadsheet_safe(row.voice_name),
        _spreadsheet_safe(row.text),
        f"{row.temperature:g}",
        f"{row.top_p:g}",
        str(row.top_k),
        f"{row.repetition_penalty:g}",
        duration,
        note,
    ]


def _spreadsheet_safe(value: str) -> str:
    """Keep a spreadsheet from running user text as a formula (OWASP's CSV advice)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_line(values: Sequence[str], bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    # The byte-order mark lets spreadsheet programs read the file as UTF-8.
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode()
