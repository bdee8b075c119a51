"""Keep a control loop at a fixed rate with low jitter.

`time.sleep` alone overshoots by a scheduler quantum (often 1-5 ms on a busy machine); the rate keeper
sleeps until just before the deadline, then spins the last `spin_s`. Deadlines are on a fixed grid
(start + k * period), so small delays do not accumulate; a tick that overran by more than one period
skips ahead instead of bursting to catch up, and is counted in `late_ticks`.
"""

from __future__ import annotations

import time


class Rate:
    """`rate.sleep()` at the end of each tick returns at the next deadline."""

    def __init__(self, hz: float, spin_s: float = 0.002) -> None:
        if hz <= 0:
            raise ValueError(f"rate must be positive, got {hz}")
        self.period_s = 1.0 / float(hz)
        self.spin_s = float(spin_s)
        self.late_ticks = 0
        self.reset()

    def reset(self) -> None:
        self._next = time.perf_counter() + self.period_s

    def sleep(self) -> float:
        """Wait for the next deadline; returns how late the tick's work ran past it (0 if on time)."""
        now = time.perf_counter()
        late = now - self._next
        if late > 0:
            if late > self.period_s:
                self.late_ticks += 1
                self._next = now + self.period_s  # skip ahead: no burst of catch-up ticks
                return late
            self._next += self.period_s
            return late
        remaining = self._next - now
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.perf_counter() < self._next:
            pass
        self._next += self.period_s
        return 0.0
