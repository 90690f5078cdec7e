"""The only place that runs SQL: tables, engine, the Store, and migrations."""

from upwatch.store.engine import open_engine
from upwatch.store.migrate import upgrade
from upwatch.store.store import Store

__all__ = ["Store", "open_engine", "upgrade"]
