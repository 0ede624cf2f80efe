"""The call guard: a breaker and a bulkhead in front of a remote storage endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dashboard.storage.base import StorageUnavailable


def _never_answered(exc: StorageUnavailable) -> bool:
    return False


class CallGuard:
    """Keep a backend that stops answering from taking every thread of the process.

    Two rules, per process (one guard per storage object):

    - **Bulkhead**: at most ``max_concurrent`` calls wait on the backend at once. A call
      that can't get a slot within ``queue_seconds`` fails at once with
      StorageUnavailable, so however slow the backend, the other threads stay free for
      requests that don't need it (health checks, logins, pages).
    - **Breaker**: after ``threshold`` calls in a row fail with StorageUnavailable
      (timeouts, refused connections, 5xx), calls fail at once for ``cooldown``
      seconds; then one trial call goes through, and its outcome closes the breaker or
      opens it again. A backend that answers, even "no such key", counts as healthy.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 2,
        threshold: int = 3,
        cooldown: float = 15.0,
        queue_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1 or threshold < 1:
            raise ValueError("a call guard needs at least one slot and a threshold of one")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._threshold = threshold
        self._cooldown = cooldown
        self._queue_seconds = queue_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        """Tell whether calls are being refused without asking the backend."""
        with self._lock:
            return self._failures >= self._threshold and (
                self._clock() < self._open_until or self._trial_running
            )

    def _admit(self) -> bool:
        """Refuse a call while the breaker is open; return whether it is the trial call."""
        with self._lock:
            if self._failures < self._threshold:
                return False
            wait = self._open_until - self._clock()
            if wait > 0 or self._trial_running:
                raise StorageUnavailable(
                    f"storage stopped answering ({self._failures} failures in a row); "
                    f"not asking it again for {max(wait, 0):.0f} s"
                )
            self._trial_running = True
            return True

    def _record(self, healthy: bool, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if healthy:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._open_until = self._clock() + self._cooldown

    @contextmanager
    def call(
        self, answered: Callable[[StorageUnavailable], bool] = _never_answered
    ) -> Iterator[None]:
        """Run one backend call inside the block, or raise StorageUnavailable at once.

        ``answered`` tells, for an "unavailable" error, whether the endpoint still
        answered (a missing bucket, a refused key): only the backend can read that from
        its own errors, and such an answer must not open the breaker.
        """
        trial = self._admit()
        if not self._slots.acquire(timeout=self._queue_seconds):
            if trial:
                self._record(True, trial)  # nothing was learnt; let the next call try
            raise StorageUnavailable(
                "storage is answering too slowly: too many requests are already waiting on it"
            )
        healthy = False
        try:
            yield
            healthy = True
        except StorageUnavailable as exc:
            healthy = answered(exc)
            raise
        except BaseException:
            healthy = True  # the backend answered (not found, bad range...) or we failed
            raise
        finally:
            self._slots.release()
            self._record(healthy, trial)
