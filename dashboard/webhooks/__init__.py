"""Webhooks: signed deliveries of organisation events to integrators' endpoints.

- `events.py`: the outbox (an event and its deliveries, written in the transaction of
  what it reports) and handing committed deliveries to the queue; `payloads.py`:
  what each event says.
- `delivery.py`: the worker's job (claim, sign, send, record, retry, disable) and the
  sweep; `signing.py`: secrets and Standard Webhooks signatures; `transport.py`: the
  address checks and the HTTP POST itself.
- `services.py`: the writes of the settings page (add, rotate, disable, enable,
  delete, test, redeliver); `queries.py`: its reads; `manage.py` + `forms.py`: the
  settings page where admins and owners manage the org's endpoints.
"""

from dashboard.tenancy import tenant_blueprint

# /o/<org_slug>/settings/webhooks: the page where admins and owners manage endpoints.
webhooks_bp = tenant_blueprint("webhooks", __name__, "/settings/webhooks")
