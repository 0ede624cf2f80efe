"""Errors read well: pages for browsers, fragments for htmx, text for audio players."""

from __future__ import annotations

from flask import abort

from dashboard import create_app
from dashboard.extensions import db
from tests.databases import make_config


def test_404_page_for_browsers(client):
    response = client.get("/o/nowhere/", headers={"Accept": "text/html"})
    assert response.status_code == 302  # anonymous: log in first
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "<html" in html and "The link may be wrong" in html


def test_404_fragment_for_htmx(client):
    response = client.get("/no/such/page", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" not in html and 'class="error-fragment"' in html and 'role="alert"' in html


def test_plain_text_when_asked(client):
    response = client.get("/no/such/page", headers={"Accept": "text/plain"})
    assert response.content_type.startswith("text/plain")


def test_405_is_readable(client):
    response = client.get("/logout", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert "isn&#39;t available here" in response.get_data(as_text=True)


def test_views_can_give_their_own_message(app, client):
    @app.get("/teapot")
    def teapot():
        abort(403, "Only the kettle may do that.")

    response = client.get("/teapot", headers={"Accept": "text/html"})
    assert response.status_code == 403 and "Only the kettle may do that." in response.get_data(
        as_text=True
    )


def test_unexpected_errors_get_a_friendly_500_and_a_log_line(tmp_path, caplog):
    config = make_config(f"sqlite:///{tmp_path / 'e.db'}", tmp_path, TESTING=False)
    app = create_app(config)

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    with app.app_context():
        db.create_all()
    response = app.test_client().get("/boom", headers={"Accept": "text/html"})
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong on our side" in html and "kaboom" not in html
    assert any("unhandled error on GET /boom" in r.getMessage() for r in caplog.records)
    with app.app_context():
        db.engine.dispose()
