"""The Store: one connector per database, and one object per aggregate over it.

    store.teams      teams and their monitor limits        store/teams.py
    store.keys       API keys                              store/keys.py
    store.monitors   monitors                              store/monitors.py
    store.results    check results (and the state they move)   store/results.py
    store.incidents  incidents                             store/incidents.py
    store.channels   notification channels                 store/channels.py
    store.deliveries the notifications outbox              store/deliveries.py
    store.reminders  reminders of open incidents           store/notices.py
    store.windows    maintenance windows                   store/windows.py
    store.gauges     monitors as /metrics shows them       store/gauges.py
    store.schedule   the checker's claims and repairs      store/schedule.py
    store.rollups    hourly and daily check figures        store/rollups.py
    store.statistics figures over any range                store/statistics.py
    store.users      users of the web dashboard            store/users.py
    store.sessions   their sessions                        store/users.py
    store.logins     login attempts, throttled             store/users.py
    store.setup      first-run setup tokens                store/users.py
    store.status_pages   status pages                      store/status_pages.py
    store.status_views   what a status page shows          store/status_view.py

Methods take ``at`` (ms) where time matters: only callers read the clock. A change that
spans aggregates runs their module functions in one ``Tx`` (``async with
db.write() as tx``), so it commits together or not at all.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from upwatch.errors import DatabaseUnavailable
from upwatch.store.channels import Channels
from upwatch.store.connector import Connector, connector_for
from upwatch.store.deliveries import Deliveries
from upwatch.store.fastpath import fastpath_for
from upwatch.store.gauges import Gauges
from upwatch.store.incidents import Incidents
from upwatch.store.keys import Keys
from upwatch.store.monitors import Monitors
from upwatch.store.notices import Reminders
from upwatch.store.results import Results
from upwatch.store.rollups import Rollups
from upwatch.store.schedule import Schedule
from upwatch.store.statistics import Statistics
from upwatch.store.status_pages import StatusPages
from upwatch.store.status_view import StatusViews
from upwatch.store.teams import Teams
from upwatch.store.users import Logins, Sessions, Setup, Users
from upwatch.store.windows import Windows

_PING = text("SELECT 1")


class Store:
    def __init__(self, engine: AsyncEngine, *, default_max_monitors: int) -> None:
        self._engine = engine
        self.db: Connector = connector_for(engine)
        fast = fastpath_for(self.db.name)
        self.teams = Teams(self.db, default_max_monitors=default_max_monitors)
        self.keys = Keys(self.db)
        self.monitors = Monitors(self.db, default_max_monitors=default_max_monitors)
        self.results = Results(self.db, fast)
        self.schedule = Schedule(self.db, fast)
        self.incidents = Incidents(self.db)
        self.channels = Channels(self.db)
        self.deliveries = Deliveries(self.db)
        self.reminders = Reminders(self.db)
        self.windows = Windows(self.db)
        self.gauges = Gauges(self.db)
        self.rollups = Rollups(self.db, fast)
        self.statistics = Statistics(self.db)
        self.users = Users(self.db)
        self.sessions = Sessions(self.db)
        self.logins = Logins(self.db)
        self.setup = Setup(self.db)
        self.status_pages = StatusPages(self.db)
        self.status_views = StatusViews(self.db)

    @property
    def engine(self) -> AsyncEngine:
        """SQLAlchemy's engine: migrations, and SQLite's write connections."""
        return self._engine

    async def ping(self) -> bool:
        try:
            async with self.db.read() as reads:
                await reads.scalar(_PING)
        except DatabaseUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.keys.close()
        await self.sessions.close()
        await self.db.close()
        await self._engine.dispose()
