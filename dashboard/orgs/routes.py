"""Landing, new organisation, and the organisation home page."""

from __future__ import annotations

from flask import g, redirect, render_template, url_for
from flask_login import current_user, login_required

from dashboard.auth.services import AccountError
from dashboard.extensions import db
from dashboard.forms import form_status
from dashboard.htmx import redirect_to
from dashboard.orgs import bp, org_bp, queries, services
from dashboard.orgs.forms import NewOrgForm


@bp.get("/home")
@login_required
def landing():
    """Send a logged-in user to their first organisation (or to create one)."""
    orgs = queries.orgs_of(current_user)
    if not orgs:
        return redirect(url_for("orgs.new"))
    return redirect(url_for("org.home", org_slug=orgs[0][0].slug))


@bp.route("/orgs/new", methods=["GET", "POST"])
@login_required
def new():
    """Create another organisation, owned by the caller."""
    form = NewOrgForm()
    if form.validate_on_submit():
        try:
            org = services.create_org(form.name.data, owner=current_user)
        except AccountError as exc:
            form.name.errors.append(str(exc))
        else:
            db.session.commit()
            return redirect_to(url_for("org.home", org_slug=org.slug))
    return render_template("orgs/new.html", form=form), form_status(form)


@org_bp.get("/")
def home():
    """Show the organisation's overview."""
    return render_template("orgs/home.html", org=g.org, overview=queries.overview(g.org.id))
