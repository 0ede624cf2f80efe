"""Sign up, log in, log out and change password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from dashboard.auth import bp, login_sessions, registration, services, throttle
from dashboard.auth.forms import ChangePasswordForm, LoginForm, SignupForm
from dashboard.auth.services import AccountError
from dashboard.extensions import db
from dashboard.forms import Form, form_status
from dashboard.htmx import redirect_to
from dashboard.models import User


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None (no open redirects)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if target.startswith(("//", "/\\")) or any(ord(c) < 32 or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def too_many_attempts(form: LoginForm, retry: int) -> Response:
    """Answer a throttled login with the form, the wait in seconds and Retry-After (429)."""
    form.form_errors.append(f"Too many failed attempts. Try again in {retry} seconds.")
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(retry)
    return response


def form_page(template: str, form: Form) -> tuple[str, int]:
    """Render `template` with `form`: 422 when what was sent has errors, else 200."""
    return render_template(template, form=form), form_status(form)


def log_in(user: User) -> None:
    """Start a server-side session for `user` and name it in the cookie; the caller commits."""
    login_sessions.start(user, request.user_agent.string, request.remote_addr)
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log in and go to `next` or the user's home (see `throttle`)."""
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(form.next.data) or url_for("orgs.landing"))
    if form.validate_on_submit():
        email, address = form.email.data, get_remote_address()
        if (wait := throttle.seconds_until_allowed(email, address)) is not None:
            return too_many_attempts(form, wait)
        try:
            user = services.authenticate(email, form.password.data)
        except AccountError as exc:  # the right password for a disabled account
            form.form_errors.append(str(exc))
            return render_template("auth/login.html", form=form), 403
        if user is not None:
            log_in(user)
            db.session.commit()
            return redirect_to(safe_next(form.next.data) or url_for("orgs.landing"))
        throttle.record_failure(email, address)
        form.form_errors.append("That email and password don't match an account.")
        return render_template("auth/login.html", form=form), 422
    return form_page("auth/login.html", form)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create an account and its first organisation (optional when joining one)."""
    form = SignupForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            user, org = registration.sign_up(
                form.email.data, form.display_name.data, form.password.data, form.org_name.data
            )
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            log_in(user)
            db.session.commit()
            flash(f"Welcome to Voxboard, {user.display_name}.", "success")
            home = url_for("org.home", org_slug=org.slug) if org else url_for("orgs.landing")
            return redirect_to(safe_next(form.next.data) or home)
    return form_page("auth/signup.html", form)


@bp.post("/logout")
def logout():
    """Log out, ending the session on the server (POST only: a link can't log anyone out)."""
    logout_user()  # `login_sessions.end_on_logout` deletes the session's row
    db.session.commit()
    flash("You are logged out.", "info")
    return redirect_to(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every other session of this user ends, this one stays."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current.data, form.password.data)
        except AccountError as exc:
            form.current.errors.append(str(exc))
        else:
            db.session.commit()
            flash("Password changed. Other sessions have been logged out.", "success")
            return redirect_to(url_for("orgs.landing"))
    return form_page("auth/password.html", form)
