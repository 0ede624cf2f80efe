"""The tenant walls: every query runs for one organisation unless it says otherwise.

- `scope`: the organisation (and user) in scope, held in context variables, and the
  application filter that adds it to every ORM statement on a tenant table (wall 1);
- `rls`: PostgreSQL row-level security, fed the same scope per transaction (wall 2);
- `web`: how a request enters an org (`/o/<org_slug>/…` blueprints, roles);
- `operator`: crossing both walls on purpose, for operator commands and the worker.

Callers use this package's names (`tenancy.all_tenants(...)`, `tenancy.get_scoped(...)`);
each is defined once, in the module above that owns it.
"""

from dashboard.tenancy.scope import (
    EXEMPT_MODELS,
    SCOPED_MODELS,
    SHARED_MODELS,
    TENANT_MODELS,
    TenantScopeError,
    all_tenants,
    all_tenants_reason,
    claim_session_user,
    current_org_id,
    current_user_id,
    enter_org,
    forget_session_user,
    get_scoped,
    get_scoped_or_404,
    install_tenant_filter,
    leave_org,
    models_with_org_id,
    org_scope,
    present_api_key,
    presented_key_hash,
    scope_listeners,
)
from dashboard.tenancy.web import (
    MANAGERS,
    is_manager,
    request_is_for_org,
    require_role,
    tenant_blueprint,
)

__all__ = [
    "EXEMPT_MODELS",
    "MANAGERS",
    "SCOPED_MODELS",
    "SHARED_MODELS",
    "TENANT_MODELS",
    "TenantScopeError",
    "all_tenants",
    "all_tenants_reason",
    "claim_session_user",
    "current_org_id",
    "current_user_id",
    "enter_org",
    "forget_session_user",
    "get_scoped",
    "get_scoped_or_404",
    "install_tenant_filter",
    "is_manager",
    "leave_org",
    "models_with_org_id",
    "org_scope",
    "present_api_key",
    "presented_key_hash",
    "request_is_for_org",
    "require_role",
    "scope_listeners",
    "tenant_blueprint",
]
