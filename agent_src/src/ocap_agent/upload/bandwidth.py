"""An optional upload bandwidth limit shared by all part workers (a token bucket).

A worker takes a part's worth of tokens before sending it, so the average
rate over a few parts stays under the limit while each part goes out at full
speed; burst size is one second of budget or one part, whichever is larger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Limiter:
    def __init__(
        self,
        bytes_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = bytes_per_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = bytes_per_s
        self._stamp = clock()

    def take(self, n: int) -> float:
        """Wait until N bytes may be sent; return the seconds waited (0 when unlimited)."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            burst = max(self.rate, float(n))
            self._tokens = min(burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
