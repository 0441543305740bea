"""When a failed webhook delivery is tried again, when it is given up, and when its endpoint is disabled (pure).

- **Backoff**: exponential with full jitter (the AWS Architecture Blog's "Exponential Backoff And Jitter"): after
  the n-th failed attempt the next one waits a uniformly random time between 0 and ``min(cap, base * 2**n)``.
  Full jitter spreads the retries of many deliveries that failed together (an endpoint that was down) instead of
  sending them back in waves.
- **Give up**: a delivery is given up once its first attempt is ``give_up_after`` ago (24 hours by default) and
  an attempt fails again, so every delivery is tried over at least that span, whatever the jitter drew. With the
  defaults (30 s base, 6 h cap) that is about 18 attempts (``expected_attempts``): the expected waits are 15 s,
  30 s, 1, 2, 4, 8, 16, 32, 64 and 128 min, then 3 h each.
- **Disable**: an endpoint whose every attempt has failed for ``disable_after`` (24 hours by default, counted from
  the first failure since its last success) is disabled: its deliveries wait, with the reason shown, until the
  owner re-enables it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(hours=24)

    def delay(self, failed_attempts: int, rng: random.Random) -> timedelta:
        """The wait after ``failed_attempts`` (1 after the first failure) failures: full jitter."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** min(failed_attempts - 1, 40))
        return timedelta(seconds=rng.uniform(0, ceiling))

    def gives_up(self, first_attempt_at: datetime, now: datetime) -> bool:
        return now - first_attempt_at >= self.give_up_after

    def disables(self, failing_since: datetime, now: datetime) -> bool:
        return now - failing_since >= self.disable_after

    def expected_attempts(self) -> int:
        """How many attempts the expected waits (half of each ceiling) fit into ``give_up_after`` (for the docs)."""
        elapsed, attempts = timedelta(0), 1
        while elapsed < self.give_up_after:
            ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempts - 1))
            elapsed += timedelta(seconds=ceiling / 2)
            attempts += 1
        return attempts
