"""The webhooks page (/o/<slug>/settings/webhooks/): who may use it, the list, adding an
endpoint (its secret shown once), the form's refusals, an endpoint's page and its log,
and each action: test event, redeliver, rotate, disable, enable, delete."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from dashboard import encryption, tenancy
from dashboard.extensions import db
from dashboard.models import (
    DeliveryStatus,
    MemberRole,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    utcnow,
)
from dashboard.models.webhooks import TEST_EVENT
from tests import factories
from tests.api.helpers import element_text
from tests.http import HX, login
from tests.tenant_world import (
    REFUSED_URL,
    make_failed_delivery,
    make_webhook_attempt,
    make_webhook_delivery,
    make_webhook_endpoint,
)
from tests.webhooks.receiver import webhook_receiver

PAGE = "/o/acme/settings/webhooks/"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{32}")
CREATE = {
    "url": "https://hooks.example.com/voxboard",
    "description": "Order system",
    "event_types": ["generation.succeeded", "voice.deleted"],
}
# Every route of the page, with the ids it takes ({endpoint}, {delivery}).
ROUTES = [
    ("GET", ""),
    ("POST", ""),
    ("GET", "{endpoint}"),
    ("POST", "{endpoint}/test"),
    ("POST", "{endpoint}/deliveries/{delivery}/redeliver"),
    ("GET", "{endpoint}/rotate"),
    ("POST", "{endpoint}/rotate"),
    ("POST", "{endpoint}/disable"),
    ("POST", "{endpoint}/enable"),
    ("GET", "{endpoint}/delete"),
    ("POST", "{endpoint}/delete"),
]
ID_ROUTES = [route for route in ROUTES if "{endpoint}" in route[1]]


@pytest.fixture
def team(app):
    """Org "acme" (owner, admin, member; one endpoint with a failed delivery) and org
    "bravo" (its own owner, endpoint and delivery). Returns detached users and ids."""
    with app.app_context(), tenancy.all_tenants("test: two orgs"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        bravo = factories.make_org(slug="bravo", name="Bravo Sound")
        users = {
            role: factories.make_user(display_name=f"Acme {role.capitalize()}")
            for role in MemberRole
        }
        for role, user in users.items():
            factories.make_membership(user, acme, MemberRole(role))
        outsider = factories.make_user(display_name="Bravo Person")
        factories.make_membership(outsider, bravo, MemberRole.OWNER)
        endpoint = make_webhook_endpoint(acme.id, description="Acme receiver")
        delivery = make_failed_delivery(endpoint)
        theirs = make_webhook_endpoint(
            bravo.id, url="https://bravo.example/secret-hook", description="Bravo receiver"
        )
        their_delivery = make_failed_delivery(theirs)
        db.session.commit()
        ids = {
            "acme": acme.id,
            "bravo": bravo.id,
            "endpoint": endpoint.id,
            "delivery": delivery.id,
            "bravo_endpoint": theirs.id,
            "bravo_delivery": their_delivery.id,
        }
        detached = {str(role): factories.detach(user) for role, user in users.items()}
        detached["outsider"] = factories.detach(outsider)
    return {"users": detached, **ids}


def as_user(client, team, who: str):
    login(client, team["users"][who])
    return client


def url(path: str, endpoint: Any, delivery: Any = None) -> str:
    return PAGE + path.format(endpoint=endpoint, delivery=delivery)


def stored(app) -> dict[str, Any]:
    """Everything the pages may change, read past the tenant walls (for "nothing changed")."""
    with app.app_context(), tenancy.all_tenants("test: read every webhook row"):
        tables = {}
        for model in (WebhookEndpoint, WebhookEvent, WebhookDelivery, WebhookAttempt):
            rows = db.session.scalars(select(model)).all()
            tables[model.__tablename__] = sorted(
                tuple(str(getattr(row, c.key)) for c in model.__table__.columns) for row in rows
            )
        return tables


def read(app, model: type, object_id: uuid.UUID):
    """Return the row (detached) as it is now, or None."""
    with app.app_context(), tenancy.all_tenants("test: read a row"):
        row = db.session.scalars(select(model).where(model.id == object_id)).one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


def count(app, model: type, **where: Any) -> int:
    with app.app_context(), tenancy.all_tenants("test: count rows"):
        statement = select(func.count()).select_from(model)
        for column, value in where.items():
            statement = statement.where(getattr(model, column) == value)
        return db.session.scalar(statement)


def add(app, team, make, **kw: Any):
    """Run `make(acme's endpoint or org id, …)` in acme's scope, commit; return the new row's id."""
    with app.app_context(), tenancy.org_scope(team["acme"]):
        row = make(**kw)
        db.session.commit()
        return row.id


def acme_endpoint(app, team, **kw: Any) -> uuid.UUID:
    return add(app, team, lambda **k: make_webhook_endpoint(team["acme"], **k), **kw)


def endpoint_row(team):
    return db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id == team["endpoint"])
    ).one()


# ----------------------------------------------------------------------- who may see it


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_members_are_refused_with_403_and_nothing_changes(app, client, team, method, path):
    before = stored(app)
    as_user(client, team, "member")
    response = client.open(
        url(path, team["endpoint"], team["delivery"]), method=method, data=CREATE
    )
    assert response.status_code == 403
    assert "Your role in this organisation doesn&#39;t allow that." in response.get_data(
        as_text=True
    )
    assert stored(app) == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_non_members_get_404_and_nothing_changes(app, client, team, method, path):
    before = stored(app)
    as_user(client, team, "outsider")  # owner of bravo, not in acme
    response = client.open(
        url(path, team["endpoint"], team["delivery"]), method=method, data=CREATE
    )
    assert response.status_code == 404
    assert "Acme receiver" not in response.get_data(as_text=True)
    assert stored(app) == before


@pytest.mark.parametrize("who", ["owner", "member"])
@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_another_orgs_endpoint_is_404_for_every_route_and_role(
    app, client, team, who, method, path
):
    """404 before the role check: a member learns no more of bravo's ids than an owner."""
    before = stored(app)
    as_user(client, team, who)
    response = client.open(
        url(path, team["bravo_endpoint"], team["bravo_delivery"]), method=method, data=CREATE
    )
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Bravo receiver" not in html and "secret-hook" not in html
    assert stored(app) == before


@pytest.mark.parametrize(
    ("endpoint", "delivery"),
    [("endpoint", "bravo_delivery"), ("endpoint", None), (None, "delivery")],
    ids=["another-orgs-delivery", "unknown-delivery", "unknown-endpoint"],
)
def test_redelivering_what_isnt_this_endpoints_is_404(app, client, team, endpoint, delivery):
    other = acme_endpoint(app, team, description="Another acme endpoint")
    their = add(
        app, team, lambda: make_failed_delivery(tenancy.get_scoped(WebhookEndpoint, other))
    )  # acme's own, but another endpoint's
    before = stored(app)
    as_user(client, team, "owner")
    for delivery_id in (team.get(delivery) or uuid.uuid4(), their):
        path = url(
            "{endpoint}/deliveries/{delivery}/redeliver",
            team.get(endpoint) or uuid.uuid4(),
            delivery_id,
        )
        assert client.post(path).status_code == 404, path
    assert stored(app) == before


def test_anonymous_visitors_are_sent_to_log_in(client, team):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_managers_get_the_page_and_a_link_in_the_header(client, team, who):
    response = as_user(client, team, who).get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<a href="/o/acme/settings/webhooks/" aria-current="page">Webhooks</a>' in html
    assert '<link rel="stylesheet" href="/static/css/webhooks.css">' in html
    assert element_text(html, "endpoints-heading") == "Endpoints 1"


def test_members_get_no_link_to_the_page(client, team):
    html = as_user(client, team, "member").get("/o/acme/").get_data(as_text=True)
    assert "Members</a>" in html
    assert "Webhooks" not in html and "/settings/webhooks" not in html


def test_managers_get_the_link_on_every_org_page(client, team):
    html = as_user(client, team, "admin").get("/o/acme/").get_data(as_text=True)
    assert re.search(r'<a href="/o/acme/settings/webhooks/"\s*>Webhooks</a>', html)


# ---------------------------------------------------------------------------- the list


def test_the_list_shows_each_endpoint_with_its_events_status_and_last_attempt(app, client, team):
    now = utcnow()
    quiet = acme_endpoint(
        app, team, url="https://quiet.example/hook", event_types=["voice.created"]
    )
    failing = acme_endpoint(
        app,
        team,
        url="https://failing.example/hook",
        consecutive_failures=20,
        disabled_at=now,
        disabled_reason="Disabled after 20 failed attempts in a row. The last one: HTTP 503",
    )
    with app.app_context(), tenancy.org_scope(team["acme"]):
        endpoint = tenancy.get_scoped(WebhookEndpoint, failing)
        delivery = make_webhook_delivery(endpoint, "generation.succeeded")
        make_webhook_attempt(delivery, status_code=500, attempted_at=now - dt.timedelta(days=2))
        make_webhook_attempt(
            delivery, status_code=None, error="Timed out", attempted_at=now - dt.timedelta(hours=3)
        )
        db.session.commit()

    html = as_user(client, team, "owner").get(PAGE).get_data(as_text=True)

    assert element_text(html, "endpoints-heading") == "Endpoints 3"
    row = element_text(html, f"endpoint-{team['endpoint']}")
    assert REFUSED_URL in row and "Acme receiver" in row
    assert "A generation's audio is ready generation.succeeded" in row
    assert "A custom voice was deleted voice.deleted" in row
    assert "Active" in row and "HTTP 500" in row and "just now" in row
    assert f'href="{PAGE}{team["endpoint"]}"' in html

    row = element_text(html, f"endpoint-{quiet}")
    assert "A custom voice was created voice.created" in row
    assert "generation.succeeded" not in row
    assert "none yet" in row and "Active" in row

    row = element_text(html, f"endpoint-{failing}")
    assert "Disabled" in row and "Disabled after 20 failed attempts in a row" in row
    assert "No answer" in row and "3 hours ago" in row  # the latest attempt, not the older one
    assert row.endswith("20")  # failures in a row

    assert "Bravo receiver" not in html and "secret-hook" not in html
    # Newest first.
    assert html.index("failing.example") < html.index("quiet.example") < html.index(REFUSED_URL)


def test_the_list_costs_the_same_statements_whatever_the_number_of_endpoints(
    app, client, team, count_queries
):
    as_user(client, team, "owner")
    client.get(PAGE)  # warm
    with count_queries() as few:
        client.get(PAGE)
    for n in range(4):
        endpoint = acme_endpoint(app, team, url=f"https://many.example/{n}")
        add(
            app,
            team,
            lambda e=endpoint: make_failed_delivery(tenancy.get_scoped(WebhookEndpoint, e)),
        )
    with count_queries() as many:
        html = client.get(PAGE).get_data(as_text=True)
    assert element_text(html, "endpoints-heading") == "Endpoints 5"
    assert len(many) == len(few)


# ----------------------------------------------------------------------------- creating


def test_adding_shows_the_secret_once_and_stores_it_encrypted(app, client, team):
    as_user(client, team, "admin")
    response = client.post(PAGE, data=CREATE)

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secrets = set(SECRET.findall(html))
    assert len(secrets) == 1
    (secret,) = secrets
    assert f'id="new-secret-value" value="{secret}" readonly' in html
    assert 'data-copy="new-secret-value" hidden>Copy secret</button>' in html
    assert "won't be shown again" in html
    assert "from standardwebhooks import Webhook" in html
    assert f"webhook = Webhook(&#34;{secret}&#34;)" in html
    assert "event = webhook.verify(body, headers)  # raises if forged" in html
    assert element_text(html, "endpoints-heading") == "Endpoints 2"

    with app.app_context(), tenancy.org_scope(team["acme"]):
        (made,) = db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id != team["endpoint"])
        ).all()
        assert made.url == CREATE["url"] and made.description == "Order system"
        assert made.event_types == ["generation.succeeded", "voice.deleted"]
        assert made.created_by == team["users"]["admin"].id
        assert made.enabled and made.previous_secret is None
        assert encryption.decrypt(made.secret) == secret
        for column in WebhookEndpoint.__table__.columns:
            assert secret not in str(getattr(made, column.key)), column.key


def test_the_secret_never_appears_again(app, client, team):
    as_user(client, team, "owner")
    secret = SECRET.search(client.post(PAGE, data=CREATE).get_data(as_text=True)).group()
    later = client.get(PAGE).get_data(as_text=True)
    assert secret not in later and not SECRET.search(later)
    assert "won't be shown again" not in later and "hooks.example.com" in later
    with client.session_transaction() as session:
        assert secret not in repr(dict(session))
    (made,) = [
        e for e in re.findall(r'id="endpoint-([0-9a-f-]{36})"', later) if e != str(team["endpoint"])
    ]
    for path in ("{endpoint}", "{endpoint}/rotate", "{endpoint}/delete"):
        shown = client.get(url(path, made)).get_data(as_text=True)
        assert secret not in shown and not SECRET.search(shown), path


def test_adding_with_htmx_answers_the_block_with_the_secret_and_a_trigger(client, team):
    as_user(client, team, "owner")
    response = client.post(PAGE, data=CREATE, headers=HX)
    assert response.status_code == 201
    assert response.headers["HX-Trigger"] == "webhook-endpoint-created"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="webhooks"') and "<html" not in html
    secret = SECRET.search(html).group()
    assert secret not in client.get(PAGE).get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"url": ""}, "url", "Enter the URL Voxboard should POST events to."),
        ({"url": "   "}, "url", "Enter the URL Voxboard should POST events to."),
        ({"url": "ftp://files.example/in"}, "url", "must start with https://"),
        ({"url": "hooks.example.com/in"}, "url", "must start with https://"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url", "user name or password"),
        ({"url": "https://hooks.example.com:0/"}, "url", "port"),
        ({"url": "https://hooks example.com/"}, "url", "spaces"),
        ({"url": "https://x.example/" + "a" * 2000}, "url", "2,000 characters or fewer"),
        ({"url": "https://bad\x00.example/"}, "url", "Endpoint URL"),  # the base Form, inline
        ({"description": "d" * 201}, "description", "200 characters or fewer"),
        ({"event_types": []}, "event_types", "Choose at least one event to send."),
        ({"event_types": ["everything"]}, "event_types", "not a valid choice"),
    ],
)
def test_refused_forms_answer_422_inline_and_store_nothing(
    app, client, team, change, field, message
):
    before = stored(app)
    as_user(client, team, "admin")
    response = client.post(PAGE, data={**CREATE, **change})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = element_text(html, f"{field}-error")
    assert error is not None and message in error, error
    assert not SECRET.search(html) and "Cache-Control" not in response.headers
    assert stored(app) == before


def test_a_refused_form_keeps_what_was_typed_and_ticked(client, team):
    as_user(client, team, "admin")
    response = client.post(PAGE, data={**CREATE, "url": "ftp://x.example/"}, headers=HX)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="webhooks"')
    assert 'value="ftp://x.example/"' in html and 'value="Order system"' in html
    assert re.search(r'value="voice.deleted"\s+checked', html)
    assert not re.search(r'value="voice.created"\s+checked', html)
    assert 'aria-invalid="true"' in html


def test_no_event_ticked_marks_the_fieldset(client, team):
    as_user(client, team, "admin")
    html = client.post(PAGE, data={**CREATE, "event_types": []}).get_data(as_text=True)
    marked = 'class="endpoint-events" aria-invalid="true" aria-describedby="event_types-error"'
    assert f"<fieldset {marked}>" in html


# ------------------------------------------------------------------ an endpoint's page


def test_the_endpoint_page_shows_its_settings_and_its_log_newest_first(app, client, team):
    now = utcnow()
    with app.app_context(), tenancy.org_scope(team["acme"]):
        endpoint = endpoint_row(team)
        delivery = make_webhook_delivery(endpoint, "generation.succeeded")
        ok = make_webhook_attempt(
            delivery,
            "generation.succeeded",
            status_code=204,
            duration_ms=1234,
            response_excerpt="<h1>Thanks</h1>",
            attempted_at=now - dt.timedelta(minutes=5),
        )
        refused = make_webhook_attempt(
            delivery,
            "generation.succeeded",
            status_code=None,
            error="Connection refused by the endpoint.",
            duration_ms=3,
            attempted_at=now - dt.timedelta(hours=1),
        )
        db.session.commit()
        ok_id, refused_id, delivery_id = ok.id, refused.id, delivery.id

    response = as_user(client, team, "owner").get(url("{endpoint}", team["endpoint"]))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<h1 class="endpoint-url">{REFUSED_URL}</h1>' in html
    assert "Acme receiver" in html and "Active" in html
    assert "disabled-notice" not in html
    assert element_text(html, "log-heading") == "Delivery log 3"

    row = element_text(html, f"attempt-{ok_id}")
    assert "A generation's audio is ready generation.succeeded" in row
    assert "HTTP 204" in row and "1,234 ms" in row
    assert f"{(now - dt.timedelta(minutes=5)):%Y-%m-%d %H:%M} UTC" in row
    assert "<details" in html and "&lt;h1&gt;Thanks&lt;/h1&gt;" in html  # escaped, folded
    row = element_text(html, f"attempt-{refused_id}")
    assert "No answer" in row and "Connection refused by the endpoint." in row and "3 ms" in row
    # Newest first: the fixture's failed test event (just made), then 5 minutes, then 1 hour ago.
    log = html[html.index('id="log-heading"') :]
    assert log.index("Test event") < log.index(f"attempt-{ok_id}")
    assert log.index(f"attempt-{ok_id}") < log.index(f"attempt-{refused_id}")
    redeliver = f"{PAGE}{team['endpoint']}/deliveries/{delivery_id}/redeliver"
    assert html.count(f'action="{redeliver}"') == 2
    for action in ("test", "disable", "rotate", "delete"):
        assert f'{PAGE}{team["endpoint"]}/{action}"' in html, action
    assert "Bravo receiver" not in html


def test_the_endpoint_page_shows_only_its_own_log(app, client, team):
    other = acme_endpoint(app, team, description="Second")
    with app.app_context(), tenancy.org_scope(team["acme"]):
        attempt = make_webhook_attempt(
            make_webhook_delivery(tenancy.get_scoped(WebhookEndpoint, other)), status_code=418
        )
        db.session.commit()
        attempt_id = attempt.id
    html = (
        as_user(client, team, "owner")
        .get(url("{endpoint}", team["endpoint"]))
        .get_data(as_text=True)
    )
    assert f"attempt-{attempt_id}" not in html and "HTTP 418" not in html
    assert element_text(html, "log-heading") == "Delivery log 1"


# ------------------------------------------------------------------------------ actions


def test_a_test_event_makes_a_delivery_for_that_endpoint_only(app, client, team):
    other = acme_endpoint(app, team, description="Not this one")
    as_user(client, team, "admin")
    response = client.post(url("{endpoint}/test", team["endpoint"]))
    assert response.status_code == 303
    assert response.headers["Location"] == url("{endpoint}", team["endpoint"])

    with app.app_context(), tenancy.org_scope(team["acme"]):
        (delivery,) = db.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id != team["delivery"])
        ).all()
        event = tenancy.get_scoped(WebhookEvent, delivery.event_id)
        assert delivery.endpoint_id == team["endpoint"]
        assert event.event_type == TEST_EVENT
        assert event.payload["data"]["endpoint_id"] == str(team["endpoint"])
    assert count(app, WebhookDelivery, endpoint_id=other) == 0
    assert count(app, WebhookDelivery, endpoint_id=team["bravo_endpoint"]) == 1

    # Sent at once (jobs run immediately in tests), refused by the transport, logged.
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "A test event was sent" in page
    assert element_text(page, "log-heading") == "Delivery log 2"
    assert "is loopback (this machine)" in page


def test_a_receiver_gets_the_test_event_signed_with_the_secret_shown(app, client, team):
    """End to end on loopback: the secret the page shows verifies what the receiver got,
    with the snippet's own call, and redelivering sends the same message again."""
    app.config["WEBHOOKS_ALLOW_LOOPBACK"] = True
    as_user(client, team, "owner")
    with webhook_receiver() as receiver:
        created = client.post(PAGE, data={**CREATE, "url": f"{receiver.url}/events"})
        secret = SECRET.search(created.get_data(as_text=True)).group()
        with app.app_context(), tenancy.org_scope(team["acme"]):
            (endpoint_id,) = db.session.scalars(
                select(WebhookEndpoint.id).where(WebhookEndpoint.url.startswith(receiver.url))
            ).all()
        assert client.post(url("{endpoint}/test", endpoint_id)).status_code == 303
        assert receiver.wait_for(1)
        (request,) = receiver.requests
        event = Webhook(secret).verify(request.body, request.headers)
        assert event["type"] == TEST_EVENT and request.path == "/events"
        assert event["data"]["endpoint_id"] == str(endpoint_id)

        page = client.get(url("{endpoint}", endpoint_id)).get_data(as_text=True)
        assert "HTTP 200" in page and "<code>ok</code>" in page
        (action,) = set(re.findall(r'action="([^"]+/redeliver)"', page))
        assert client.post(action).status_code == 303
        assert receiver.wait_for(2)
        again = receiver.requests[1]
        assert again.headers["webhook-id"] == request.headers["webhook-id"]
        Webhook(secret).verify(again.body, again.headers)
    page = client.get(url("{endpoint}", endpoint_id)).get_data(as_text=True)
    assert element_text(page, "log-heading") == "Delivery log 2"


def test_redelivering_queues_the_delivery_again(app, client, team):
    before = read(app, WebhookDelivery, team["delivery"])
    assert before.status is DeliveryStatus.FAILED and before.finished_at is not None
    as_user(client, team, "owner")
    response = client.post(
        url("{endpoint}/deliveries/{delivery}/redeliver", team["endpoint"], team["delivery"])
    )
    assert response.status_code == 303
    assert response.headers["Location"] == url("{endpoint}", team["endpoint"])
    after = read(app, WebhookDelivery, team["delivery"])
    # Pending again: sent now (and, refused by the transport, waiting for its retry).
    assert after.status is DeliveryStatus.PENDING and after.finished_at is None
    assert after.event_id == before.event_id  # the same event: the same `webhook-id`
    assert count(app, WebhookDelivery) == 2  # nothing new (acme's and bravo's)
    assert "The event was sent again" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_rotating_confirms_then_shows_a_new_secret_and_keeps_the_old_one_a_day(app, client, team):
    with app.app_context(), tenancy.org_scope(team["acme"]):
        old_secret = encryption.decrypt(endpoint_row(team).secret)
    as_user(client, team, "owner")
    rotate = url("{endpoint}/rotate", team["endpoint"])

    confirm = client.get(rotate)
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Rotate the signing secret?" in html and "24 hours" in html
    assert f'<form method="post" action="{rotate}"' in html
    assert not SECRET.search(html)

    response = client.post(rotate)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    (secret,) = set(SECRET.findall(html))
    assert secret != old_secret
    assert "won't be shown again" in html and "keeps working for 24 hours" in html
    assert 'data-copy="new-secret-value"' in html
    with app.app_context(), tenancy.org_scope(team["acme"]):
        endpoint = endpoint_row(team)
        assert encryption.decrypt(endpoint.secret) == secret
        assert encryption.decrypt(endpoint.previous_secret) == old_secret
        ahead = endpoint.previous_secret_expires_at - utcnow()
        assert dt.timedelta(hours=23, minutes=59) < ahead <= dt.timedelta(hours=24)
    assert f"{endpoint.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC" in html

    page = client.get(url("{endpoint}", team["endpoint"])).get_data(as_text=True)
    assert secret not in page and old_secret not in page
    assert "The previous secret also signs deliveries until" in page


def test_disabling_cancels_pending_deliveries_and_shows_a_notice(app, client, team):
    with app.app_context(), tenancy.org_scope(team["acme"]):
        waiting = make_webhook_delivery(endpoint_row(team)).id
        db.session.commit()
    with app.app_context(), tenancy.org_scope(team["bravo"]):
        theirs = make_webhook_delivery(
            tenancy.get_scoped(WebhookEndpoint, team["bravo_endpoint"])
        ).id
        db.session.commit()
    as_user(client, team, "admin")
    response = client.post(url("{endpoint}/disable", team["endpoint"]))
    assert response.status_code == 303
    assert response.headers["Location"] == url("{endpoint}", team["endpoint"])

    endpoint = read(app, WebhookEndpoint, team["endpoint"])
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by Acme Admin."
    assert read(app, WebhookDelivery, waiting).status is DeliveryStatus.CANCELLED
    assert read(app, WebhookDelivery, team["delivery"]).status is DeliveryStatus.FAILED
    assert read(app, WebhookDelivery, theirs).status is DeliveryStatus.PENDING

    html = client.get(response.headers["Location"]).get_data(as_text=True)
    notice = element_text(html, "disabled-notice")
    assert notice.startswith("This endpoint is disabled since")
    assert endpoint.disabled_reason in notice and "Enable it again" in notice
    assert "The endpoint is disabled: nothing is sent to it" in html  # the flash
    assert f'{PAGE}{team["endpoint"]}/test"' not in html  # nothing to send to
    assert "/redeliver" not in html
    listed = element_text(client.get(PAGE).get_data(as_text=True), f"endpoint-{team['endpoint']}")
    assert "Disabled" in listed and endpoint.disabled_reason in listed


def test_a_disabled_endpoint_is_sent_nothing_until_enabled(app, client, team):
    as_user(client, team, "owner")
    client.post(url("{endpoint}/disable", team["endpoint"]))
    before = stored(app)
    for path in ("{endpoint}/test", "{endpoint}/deliveries/{delivery}/redeliver"):
        response = client.post(url(path, team["endpoint"], team["delivery"]), follow_redirects=True)
        assert "The endpoint is disabled, so nothing is sent to it" in response.get_data(
            as_text=True
        )
    again = client.post(url("{endpoint}/disable", team["endpoint"]), follow_redirects=True)
    assert "The endpoint was already disabled." in again.get_data(as_text=True)
    assert stored(app) == before

    response = client.post(url("{endpoint}/enable", team["endpoint"]))
    assert response.status_code == 303
    endpoint = read(app, WebhookEndpoint, team["endpoint"])
    assert endpoint.enabled and endpoint.disabled_reason is None
    assert endpoint.consecutive_failures == 0
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "disabled-notice" not in html and "The endpoint is enabled" in html


def test_disabling_with_htmx_redirects_the_page(app, client, team):
    response = as_user(client, team, "owner").post(
        url("{endpoint}/disable", team["endpoint"]), headers=HX
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == url("{endpoint}", team["endpoint"])
    assert not read(app, WebhookEndpoint, team["endpoint"]).enabled


def test_deleting_confirms_then_removes_the_endpoint_and_its_log(app, client, team):
    as_user(client, team, "owner")
    delete = url("{endpoint}/delete", team["endpoint"])
    confirm = client.get(delete)
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Delete this endpoint?" in html and REFUSED_URL in html
    assert f'<form method="post" action="{delete}"' in html
    assert read(app, WebhookEndpoint, team["endpoint"]) is not None

    response = client.post(delete)
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert read(app, WebhookEndpoint, team["endpoint"]) is None
    for model in (WebhookDelivery, WebhookAttempt):
        assert count(app, model, endpoint_id=team["endpoint"]) == 0, model
    assert count(app, WebhookEndpoint) == 1  # bravo's is untouched
    assert count(app, WebhookAttempt, endpoint_id=team["bravo_endpoint"]) == 1
    page = client.get(PAGE).get_data(as_text=True)
    assert f"The endpoint {REFUSED_URL} was deleted with its delivery log." in page
    assert element_text(page, "endpoints-heading") == "Endpoints 0"
    assert client.get(url("{endpoint}", team["endpoint"])).status_code == 404


def test_deleting_with_htmx_redirects_to_the_list(app, client, team):
    response = as_user(client, team, "admin").post(
        url("{endpoint}/delete", team["endpoint"]), headers=HX
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == PAGE
    assert read(app, WebhookEndpoint, team["endpoint"]) is None
