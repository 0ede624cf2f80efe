"""The public API v1 (`/api/v1/…`) and the API keys page of an organisation's settings.

- `auth.py`: every API request is authenticated by its bearer key, which puts the
  key's organisation in scope through the same two walls as a session membership;
  then the rate limit per key, and at the end the key's per-day counters.
- `routes.py`: the endpoints, thin over the same queries and services as the pages
  (the API is another face, not another implementation); `schemas.py`: their
  marshmallow schemas, from which flask-smorest writes the OpenAPI document.
- `webhooks.py`: the webhook endpoints' views and schemas, over `dashboard.webhooks`.
- `problems.py`: every error as RFC 9457 problem details.
- `keys.py`: secrets and their keyed hash; `services.py` / `queries.py`: keys and
  their traffic; `manage.py`: the settings page where admins create and revoke keys.
- `reference.py`: the OpenAPI document's set-up and the readable reference page.
"""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

from dashboard.tenancy import tenant_blueprint

voices_bp = ApiBlueprint(
    "api_voices", __name__, url_prefix="/api/v1/voices",
    description="The voices an organisation can use: the system voices and its own.",
)  # fmt: skip
generations_bp = ApiBlueprint(
    "api_generations", __name__, url_prefix="/api/v1/generations",
    description="Submit text to speak, follow it until its audio is ready, list and delete.",
)  # fmt: skip
usage_bp = ApiBlueprint(
    "api_usage", __name__, url_prefix="/api/v1/usage",
    description="This month's characters of the organisation and of the calling key.",
)  # fmt: skip
webhooks_bp = ApiBlueprint(
    "api_webhooks", __name__, url_prefix="/api/v1/webhooks",
    description="Where the organisation's events are sent: add, list and delete endpoints.",
)  # fmt: skip
API_BLUEPRINTS = (voices_bp, generations_bp, usage_bp, webhooks_bp)
API_BLUEPRINT_NAMES = frozenset(bp.name for bp in API_BLUEPRINTS)

# /o/<org_slug>/settings/api-keys: the page where admins and owners manage keys.
keys_bp = tenant_blueprint("api_keys", __name__, "/settings/api-keys")
# /api/docs: the readable API reference (public, like the OpenAPI document).
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api")
