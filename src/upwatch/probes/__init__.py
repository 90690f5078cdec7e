"""Probes: one module per kind of check, each ``async probe(...) -> Outcome``.

Probes know nothing of the database or of timers; the caller owns the schedule.
"""
