"""Signing secrets and Standard Webhooks signatures (the `standardwebhooks` package).

A secret is `whsec_` and 24 random bytes in base64, the format the specification and
its libraries expect. A delivery is signed with the endpoint's current secret and,
for 24 hours after a rotation, with the previous one too: `webhook-signature` then
holds two space-separated `v1,…` signatures, and a receiver that still has the old
secret keeps verifying while it switches.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# How long a rotated-out secret still signs deliveries.
PREVIOUS_SECRET_VALID = dt.timedelta(hours=24)


def new_secret() -> str:
    """Return a fresh signing secret (`whsec_…`)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    message_id: str, sent_at: dt.datetime, body: bytes, signing_secrets: Iterable[str]
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for `body`, one signature per secret."""
    signatures = [Webhook(secret).sign(message_id, sent_at, body) for secret in signing_secrets]
    if not signatures:
        raise ValueError("a delivery needs at least one signing secret")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
