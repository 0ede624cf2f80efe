"""Members page (placeholder until the members feature lands)."""

from __future__ import annotations

from flask import g, render_template
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.members import bp
from dashboard.models import Membership, User


@bp.get("/")
def index():
    """List the organisation's members."""
    rows = db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).order_by(User.email)
    ).all()
    return render_template("members/index.html", org=g.org, rows=rows)
