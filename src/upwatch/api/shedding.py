"""When to refuse requests: by how long they wait, not by how many there are.

A fixed cap on requests in flight refuses the 17th request of a burst even when each
takes a millisecond and the burst is gone in twenty. What hurts clients is not a queue
but a queue that stays: requests that keep waiting longer than a target, interval after
interval. This is CoDel's test (Nichols and Jacobson, "Controlling Queue Delay", 2012)
applied to requests, with the two changes that request servers make to it (Facebook's
"adaptive CoDel" in "Fail at Scale", 2015):

- the sojourn time is measured per request, from when it arrived to when its handler
  starts: time spent queued, not time spent being served, so a slow endpoint does not
  look like a queue. On one event loop most of the queue is unread, in the sockets:
  the loop reads them only between runs of handlers. When it arrived is therefore
  estimated (``arrival``): the loop was waiting for it if it had nothing to do just
  before; otherwise it came at the earliest when its connection was last free (its
  previous response was written) and when the loop last looked at the sockets (the
  start of the handlers that ran since the previous read);
- past the target for a whole interval, the server enters the shedding state and
  refuses each *arriving* request that would wait longer than the target: what it has
  waited unread, plus the queue ahead of it at the recent time per request (a request
  server's clients do not back off on a drop as TCP does, so CoDel's spaced single
  drops would not drain the queue). It leaves that state when a request starts within
  the target with none behind it. A queue that comes back soon after (within
  ``memory``) is shed at once, without another interval's grace: under sustained
  overload the accepted requests wait about the target, not an interval.

A burst at an idle server is absorbed: it starts shedding only if the queue lasts
longer than ``interval`` *and* more than ``burst`` requests arrived meanwhile, so 200
requests that arrive together are all answered even when they take longer than the
interval to serve. A queue counts as gone when it is empty and its last request started
within the target: CoDel's minimum over an interval, taken where the loop's batches end.
Pure logic, no I/O: the caller passes the time (``loop.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_WEIGHT = 0.05  # of each new sample in the moving average of time per request

TARGET_S = 0.020  # requests that start within this after arriving are not queued
INTERVAL_S = 0.1  # a queue above the target for this long is a standing queue
BURST_REQUESTS = 256  # arrivals into a queue: this many or fewer are a burst, absorbed
MEMORY_INTERVALS = 10  # a queue back within this many intervals is shed at once
IDLE_GAP_S = 0.001  # a loop with nothing to report for this long was waiting for input


@dataclass
class DelayShedder:
    """Decides at each arrival whether to refuse it; learns from each request start."""

    target_s: float = TARGET_S
    interval_s: float = INTERVAL_S
    burst: int = BURST_REQUESTS
    queued: int = 0  # requests read and not yet started
    shedding: bool = False
    _above_since: float | None = None  # when requests began starting later than target
    _arrived_above: int = 0  # requests accepted since then
    _calm_at: float = float("-inf")  # when the last shedding state ended
    _per_request_s: float = 0.0  # moving average of the time between handler starts
    # What the loop did last, to tell when unread input may have arrived:
    _last_event: float = float("-inf")  # a read, a handler start or a response written
    _last_start: float = float("-inf")
    _waiting_after_last_start: int = 0
    _handlers_since: float | None = None  # first handler start since the last read
    _window_start: float = float("-inf")  # input read now arrived no earlier than this

    @property
    def memory_s(self) -> float:
        return MEMORY_INTERVALS * self.interval_s

    @property
    def enabled(self) -> bool:
        return self.target_s > 0

    def admit(self, now: float, free_since: float, *, refusable: bool = True) -> float | None:
        """A request's head was read at ``now`` on a connection free to send it since
        ``free_since``: None to refuse it, else when it arrived (at the earliest), to
        pass to ``start``. Every admitted request must be followed by its ``start``."""
        arrived = self._arrival(now, free_since)
        if self.shedding and refusable:
            wait_s = now - arrived + self.queued * self._per_request_s
            if wait_s >= self.target_s:
                return None
        self.queued += 1
        if self._above_since is not None:
            self._arrived_above += 1
        return arrived

    def _arrival(self, now: float, free_since: float) -> float:
        if now - self._last_event > IDLE_GAP_S:  # the loop was waiting: it came now
            self._window_start = now
        elif self._handlers_since is not None:  # handlers ran since the last look
            self._window_start = self._handlers_since
        self._handlers_since = None
        self._last_event = now
        return max(free_since, self._window_start)

    def answered(self, now: float) -> None:
        """A response was written (the loop is busy, not waiting)."""
        self._last_event = now

    def forget(self) -> None:
        """An admitted request will not start (its connection became an upgrade)."""
        self.queued -= 1

    def start(self, arrived: float, now: float) -> None:
        """An admitted request's handler starts."""
        if self._waiting_after_last_start > 0:  # it waited for the one before: a sample
            gap_s = now - self._last_start
            self._per_request_s += SERVICE_WEIGHT * (gap_s - self._per_request_s)
        self.queued -= 1
        self._waiting_after_last_start = self.queued
        if self._handlers_since is None:
            self._handlers_since = now
        self._last_event = self._last_start = now
        if not self.enabled:
            return
        sojourn_s = now - arrived
        # Calm: the queue is empty and its last request did not wait. (A request that
        # starts at once ahead of many others proves nothing: the loop reads a batch
        # and may start the last to arrive first.)
        if self.queued <= 0 and sojourn_s < self.target_s:
            self._above_since = None
            self._arrived_above = 0
            if self.shedding:
                self.shedding = False
                self._calm_at = now
            return
        if self.shedding:
            return
        if self._above_since is None:
            self._above_since = now
        recurring = now - self._calm_at < self.memory_s  # the same overload, back again
        standing = now - self._above_since >= self.interval_s and self._arrived_above > self.burst
        self.shedding = recurring or standing
