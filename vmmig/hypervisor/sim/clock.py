"""Clocks that pace the simulated hypervisor.

Both expose ``now()`` (seconds, float, monotonic) and ``sleep(dt)``, which is
all a :class:`~vmmig.hypervisor.sim.precopy.PrecopyJob` needs:

* :class:`VirtualClock` never waits: ``sleep`` just moves the time forward, so
  tests and the virtual simulator run a 10-minute migration in microseconds.
* :class:`ScaledClock` follows the real monotonic clock, sped up by ``scale``
  (modelled seconds per real second, ``[sim] time_scale``), so an operator can
  watch a migration progress and abort it.
"""

import threading
import time


class VirtualClock:
    """Simulated time that only moves when told to."""

    def __init__(self, start=0.0):
        self._now = float(start)
        # A monitor thread may read now() while the job thread sleeps.
        self._lock = threading.Lock()

    def now(self):
        with self._lock:
            return self._now

    def advance(self, dt):
        """Move the time forward by ``dt`` seconds and return the new time."""
        if dt < 0:
            raise ValueError("a clock cannot go backwards (dt=%r)" % dt)
        with self._lock:
            self._now += dt
            return self._now

    def sleep(self, dt):
        """Sleeping on a virtual clock is instant: the time simply advances."""
        if dt > 0:
            self.advance(dt)


class ScaledClock:
    """Real monotonic time multiplied by ``scale``; ``sleep(dt)`` waits dt/scale."""

    def __init__(self, scale=1.0):
        if scale <= 0:
            raise ValueError("scale must be positive (got %r)" % scale)
        self.scale = float(scale)
        self._origin = time.monotonic()

    def now(self):
        return (time.monotonic() - self._origin) * self.scale

    def sleep(self, dt):
        if dt > 0:
            time.sleep(dt / self.scale)
