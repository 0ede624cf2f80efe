"""Login throttling: failed attempts counted per account and address, per address, per account.

Only failed attempts count (a correct password never does), in the limiter's storage
(`RATELIMIT_STORAGE_URI`: Redis in production, so every worker sees the same counts):

- per (account, address), `LOGIN_RATE_LIMIT`, tight: one address guessing one
  account's password;
- per address, `LOGIN_ADDRESS_RATE_LIMIT`, loose: one address trying many accounts;
- per account, `LOGIN_ACCOUNT_RATE_LIMIT`, moderate: many addresses guessing one
  account. It binds only addresses that have already failed on that account within its
  window, so knowing someone's email is not enough to lock them out: from an address
  that hasn't failed, the right password always gets in.

The price of that promise: each fresh address gets one guess at an account past its
limit before it counts as having failed; the per-address limit bounds what one address
can spend that way. An attempt is checked before the password is verified (a refused
attempt costs no hash and learns nothing) and counted after it failed, so attempts in
flight at the same moment can overshoot a limit by their number.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import RateLimiter
from redis.exceptions import RedisError

from dashboard.extensions import limiter
from dashboard.models import normalise_email

log = logging.getLogger(__name__)
T = TypeVar("T")

# When the shared store (Redis) is down, counting goes on in this process's memory:
# weaker than shared counters (each worker counts apart), far better than letting every
# guess through, and logins keep working. Flask-Limiter's decorators do the same
# (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED).
_fallback: dict[type, RateLimiter] = {}
_fallback_lock = threading.Lock()
_down_until = 0.0  # after a failure, don't wait on the shared store again for a while
RETRY_SHARED_AFTER = 30.0


def _storage_failure(exc: BaseException) -> bool:
    """Tell whether `exc` says the shared store is unreachable (rather than a bug)."""
    return isinstance(exc, (StorageError, OSError, RedisError))


def _counting(operation: Callable[[RateLimiter], T]) -> T:
    """Run `operation` on the limiter's strategy, or on the in-process one if its store fails."""
    global _down_until
    strategy = limiter.limiter
    if time.monotonic() >= _down_until:
        try:
            return operation(strategy)
        except Exception as exc:
            if not _storage_failure(exc):
                raise
            _down_until = time.monotonic() + RETRY_SHARED_AFTER
            log.error(
                "login counters unavailable (%s); counting in this process for %g s",
                exc,
                RETRY_SHARED_AFTER,
            )
    with _fallback_lock:
        local = _fallback.setdefault(type(strategy), type(strategy)(MemoryStorage()))
    return operation(local)


# One limit and the keys it counts under, e.g. (5 per 5 minutes, ("login-pair", email, address)).
Counter = tuple[RateLimitItem, tuple[str, ...]]


@lru_cache(maxsize=32)
def _limits(text: str) -> tuple[RateLimitItem, ...]:
    """Parse a setting like "5 per 5 minutes" (or several, separated by ";")."""
    return tuple(parse_many(text))


def _counters(email: str, address: str) -> dict[str, list[Counter]]:
    """Return the pair, address, account and "failed here" counters of one attempt."""
    config = current_app.config
    account = normalise_email(email)
    per_account = _limits(config["LOGIN_ACCOUNT_RATE_LIMIT"])
    # Set by any failure from this address on this account; lasts the account window.
    window = max(item.get_expiry() for item in per_account)
    return {
        "pair": [
            (i, ("login-pair", account, address)) for i in _limits(config["LOGIN_RATE_LIMIT"])
        ],
        "address": [
            (i, ("login-address", address)) for i in _limits(config["LOGIN_ADDRESS_RATE_LIMIT"])
        ],
        "account": [(i, ("login-account", account)) for i in per_account],
        "failed_here": [(_limits(f"1 per {window} second")[0], ("login-failed", account, address))],
    }


def seconds_until_allowed(email: str, address: str) -> int | None:
    """Return how long an attempt on `email` from `address` must wait, or None if it may go."""
    if not limiter.enabled:
        return None
    counters = _counters(email, address)

    def waits(strategy: RateLimiter) -> list[float]:
        binding = counters["pair"] + counters["address"]
        if not all(strategy.test(item, *keys) for item, keys in counters["failed_here"]):
            binding += counters["account"]
        return [
            strategy.get_window_stats(item, *keys).reset_time - time.time()
            for item, keys in binding
            if not strategy.test(item, *keys)
        ]

    found = _counting(waits)
    return max(1, math.ceil(max(found))) if found else None


def record_failure(email: str, address: str) -> None:
    """Count a wrong password for `email` from `address` against every counter."""
    if not limiter.enabled:
        return
    counters = _counters(email, address)

    def hit(strategy: RateLimiter) -> None:
        for group in counters.values():
            for item, keys in group:
                strategy.hit(item, *keys)

    _counting(hit)
