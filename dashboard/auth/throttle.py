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

import math
import time
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse_many

from dashboard.extensions import limiter
from dashboard.models import normalise_email

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
    strategy = limiter.limiter
    counters = _counters(email, address)
    binding = counters["pair"] + counters["address"]
    if not all(strategy.test(item, *keys) for item, keys in counters["failed_here"]):
        binding += counters["account"]
    waits = [
        strategy.get_window_stats(item, *keys).reset_time - time.time()
        for item, keys in binding
        if not strategy.test(item, *keys)
    ]
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(email: str, address: str) -> None:
    """Count a wrong password for `email` from `address` against every counter."""
    if not limiter.enabled:
        return
    strategy = limiter.limiter
    for counters in _counters(email, address).values():
        for item, keys in counters:
            strategy.hit(item, *keys)
