"""One generation's detail page (waveform player, text, voice, parameters, actions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import abort, g
from sqlalchemy import select

from dashboard import htmx
from dashboard.extensions import db
from dashboard.formatting import relative_time
from dashboard.generations import bp
from dashboard.generations.forms import PARAMETERS, Parameter
from dashboard.models import Generation, User, Voice

DETAIL = "generations/detail.html"



@dataclass(frozen=True, slots=True)
class ParameterValue:
    """One sampling parameter as the page shows it: the slider's label and the value used."""

    parameter: Parameter
    value: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class GenerationDetail:
    """A generation with what its page shows beside it."""

    generation: Generation
    voice: Voice | None  # None once the voice is deleted: only the snapshot name is left
    creator: User | None  # None once the account is deleted
    parameters: list[ParameterValue]
    created_ago: str


def parameters_of(generation: Generation) -> list[ParameterValue]:
    """Return the four parameters with the generate form's labels and formatted values."""
    values = []
    for parameter in PARAMETERS:
        value = getattr(generation, parameter.name)
        shown = f"{int(value):,}" if parameter.integer else f"{value:.2f}"
        values.append(ParameterValue(parameter, shown, value == parameter.default))
    return values


def load_detail(generation_id: uuid.UUID) -> GenerationDetail:
    """Load the generation (404 unless the org in scope owns it), its voice and creator.

    One statement: the voice and the creator are outer-joined, so a deleted voice or
    account is simply None. Both walls still apply to the voice (the tenant filter puts
    its criteria in the join's ON clause; row-level security hides other orgs' rows).
    """
    try:
        generation_id = uuid.UUID(str(generation_id))
    except ValueError:
        abort(404)
    row = db.session.execute(
        select(Generation, Voice, User)
        .outerjoin(Voice, Voice.id == Generation.voice_id)
        .outerjoin(User, User.id == Generation.created_by)
        .where(Generation.id == generation_id)
    ).one_or_none()
    if row is None:
        abort(404)
    generation, voice, creator = row
    return GenerationDetail(
        generation, voice, creator, parameters_of(generation), relative_time(generation.created_at)
    )


@bp.get("/<uuid:generation_id>", endpoint="detail")
def show(generation_id: uuid.UUID):
    """Show one generation: its player (or live status), text, voice, parameters, actions."""
    return htmx.render_page(DETAIL, org=g.org, detail=load_detail(generation_id))
