"""Every model, importable from one place (Alembic sees them all through this)."""

from dashboard.models.accounts import Invitation, Membership, Organization, User, normalise_email
from dashboard.models.analytics import AnalyticsSnapshot
from dashboard.models.api_keys import ApiKey, ApiKeyDay, ApiScope, IdempotentRequest
from dashboard.models.base import Base, new_id, utcnow
from dashboard.models.enums import GenerationStatus, MemberRole, VoiceCategory, VoiceVariant
from dashboard.models.generations import Generation
from dashboard.models.sessions import UserSession
from dashboard.models.usage import UsageEntry, UsageKind, UsageSource
from dashboard.models.voices import Voice
from dashboard.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

__all__ = [
    "AnalyticsSnapshot",
    "ApiKey",
    "ApiKeyDay",
    "ApiScope",
    "Base",
    "DeliveryStatus",
    "Generation",
    "GenerationStatus",
    "IdempotentRequest",
    "Invitation",
    "MemberRole",
    "Membership",
    "Organization",
    "UsageEntry",
    "UsageKind",
    "UsageSource",
    "User",
    "UserSession",
    "Voice",
    "VoiceCategory",
    "VoiceVariant",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventType",
    "new_id",
    "normalise_email",
    "utcnow",
]
