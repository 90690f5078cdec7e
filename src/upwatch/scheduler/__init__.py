"""The checker: pure planning, claiming through the Store, the worker loop, the batcher."""

from upwatch.scheduler.worker import Worker

__all__ = ["Worker"]
