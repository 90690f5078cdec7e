"""Running processes: the API server and/or the checker, with migrations at start and a
graceful stop on SIGTERM / SIGINT.

`serve` runs the API here and the checks in processes of their own (checkers.py: one
by default, ``--checker-processes N``): on a thread of one process the two waited for
each other's GIL. `api` runs the API only. `worker` runs the checker only, on a thread of
its own with its own event loop and Store: one loop for both let API load starve the
checks (a loop iteration runs every ready callback: 16 requests of 30 ms each made every
iteration 0.5 s long, and claims came too late for their slot)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

import uvicorn
from prometheus_client import CollectorRegistry, start_http_server

from upwatch import web
from upwatch.api import create_app
from upwatch.api.protocol import guarded_protocol
from upwatch.checkers import METRICS_LINE, CheckerProcesses, ChildMetrics, watch_parent
from upwatch.config import Settings, redact_url
from upwatch.errors import UpwatchError
from upwatch.metrics import CheckerMetrics, new_registry
from upwatch.scheduler import Worker
from upwatch.store import Store, open_engine, upgrade
from upwatch.store.migrate import is_current

log = logging.getLogger("upwatch")

T = TypeVar("T")

# Server-side timeouts and limits: idle and slow clients cannot hold connections.
KEEP_ALIVE_TIMEOUT_S = 5
GRACEFUL_SHUTDOWN_S = 10
GIL_SWITCH_INTERVAL_S = 0.001


class StartupError(UpwatchError):
    """upwatch could not start."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on uvloop where it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def open_store(settings: Settings, *, migrate: bool) -> Store:
    """A Store on a database that answers and is at the newest schema, or StartupError."""
    store = Store(
        open_engine(settings.database_url), default_max_monitors=settings.max_monitors_per_team
    )
    where = redact_url(settings.database_url)
    try:
        if migrate:
            await upgrade(store.engine)
        elif not await is_current(store.engine):
            raise StartupError(f"database {where} needs migrating: run `upwatch migrate`")
    except Exception as exc:
        await store.close()
        if isinstance(exc, StartupError):
            raise
        raise StartupError(f"cannot open database {where}: {_first_line(exc)}") from None
    return store


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: ours stops the checker too."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(
    settings: Settings,
    store: Store,
    wake: Callable[[], None] | None,
    registry: CollectorRegistry,
) -> _Server:
    app = create_app(settings, store, on_change=wake, registry=registry)
    web.install(app)  # the pages, under / beside the API
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(
            max_in_flight=settings.max_requests_in_flight,
            shed_target_s=settings.shed_target_ms / 1000,
            shed_interval_s=settings.shed_interval_ms / 1000,
        ),
        lifespan="off",
        ws="none",  # no WebSocket routes: upgrades are not offered
        log_config=None,
        access_log=False,  # api/requestlog.py writes one with the request id
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return _Server(config)


async def announce_setup(settings: Settings, store: Store) -> None:
    """While nobody can log in, print a one-time token that lets the first admin in
    (SPEC §10): whoever reads this log owns the machine already."""
    if await store.users.count():
        return
    token = await store.setup.issue(at=int(time.time() * 1000))
    if token is None:
        return
    base = settings.public_url.rstrip("/") or f"http://{_hostport(settings.host, settings.port)}"
    log.warning(
        "no user yet: create the first admin at %s/setup with the setup token %s "
        "(valid 24 hours, once)",
        base,
        token,
    )


async def serve(
    settings: Settings, *, api: bool, checker: bool, migrate: bool, supervised: bool = False
) -> int:
    """Run until SIGTERM/SIGINT. Returns the process exit status. With both ``api`` and
    ``checker`` (`serve`), the checks run in child processes; ``supervised`` is such a
    child (`worker --supervised`)."""
    registry = new_registry()  # one per process: the API's and the checker's metrics
    sock = listen(settings.host, settings.port) if api else None
    # Without an API, metrics are served on their own port (if one is set).
    exporter = None
    if supervised:
        exporter = export_to_parent(registry)  # told to the parent once checking
    elif not api:
        exporter = export_metrics(settings, registry)
    try:
        store = await open_store(settings, migrate=migrate)
    except BaseException:
        if sock is not None:
            sock.close()
        if exporter is not None:
            await asyncio.to_thread(close_exporter, exporter)
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: dict[asyncio.Future[Any], str] = {}
    checks = CheckerThread(settings, registry) if checker and not api else None
    children = CheckerProcesses(settings, settings.checker_processes) if checker and api else None
    parent: asyncio.Task[None] | None = None
    if checks is not None:
        checking = checks.start()
        tasks[checking] = "checker"
        if supervised:
            assert exporter is not None
            parent = asyncio.create_task(watch_parent(checks.wake, stop))
            # The parent listens once its checkers check: a monitor created then is
            # checked at once, not late by a checker's start-up.
            ready: asyncio.Future[Any] = asyncio.ensure_future(checks.checking.wait())
            first: list[asyncio.Future[Any]] = [ready, checking]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            print(f"{METRICS_LINE} {exporter.server_port}", flush=True)
    if children is not None:
        try:
            tasks[await children.start()] = "a checker process"
        except BaseException as exc:
            if sock is not None:
                sock.close()
            await store.close()
            if isinstance(exc, OSError | RuntimeError):
                raise StartupError(f"cannot start the checks: {exc}") from None
            raise
        registry.register(ChildMetrics(children))
        log.info("checks run in %d process(es) of their own", settings.checker_processes)
    wake = children.wake if children else checks.wake if checks else None
    server = _server(settings, store, wake, registry) if api else None
    if server is not None:
        await announce_setup(settings, store)
        assert sock is not None
        serving = server.serve(sockets=[sock])
        tasks[asyncio.create_task(serving, name="upwatch-api")] = "API server"
        log.info("API listening on http://%s", _hostport(settings.host, settings.port))
    # Everything built so far (modules, the app, the Store) lives as long as the
    # process: out of the collector's sight, a full collection under load walks only
    # what requests allocate, not the whole heap, and stalls the loop for less
    # (README, "Bursts and overload, measured").
    gc.freeze()
    waiter: asyncio.Future[Any] = asyncio.create_task(stop.wait())
    status = 0
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter:
                status = 1
                log.error("%s stopped unexpectedly: %s", tasks[task], _why(task))
    except BaseException:
        status = 1
        raise
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        if checks is not None:
            checks.stop()
        # After the API: changes it accepted until the end are checked by a child that
        # flushes its results before it exits.
        if children is not None and any(s != 0 for s in await children.stop()):
            status = 1
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            status = 1
        waiter.cancel()
        if parent is not None:
            parent.cancel()
        await store.close()
        if exporter is not None:
            await asyncio.to_thread(close_exporter, exporter)
    log.info("stopped")
    return status


def _why(task: asyncio.Future[Any]) -> str:
    if task.cancelled():
        return "cancelled"
    if (error := task.exception()) is not None:
        return str(error) or type(error).__name__
    result = task.result()
    return f"exit status {result}" if isinstance(result, int) else "exited"


class CheckerThread:
    """The checker on a thread of its own: its own event loop, Store and Worker.
    ``start`` returns a future (on the caller's loop) that ends with the thread:
    with None after a stop, with the exception if the checker failed; ``checking``
    (also on the caller's loop) is set once the worker runs."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self._settings = settings
        self._metrics = CheckerMetrics(registry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Worker | None = None
        self._stop: asyncio.Event | None = None
        self._stop_asked = threading.Event()
        self.checking = asyncio.Event()
        self._caller: asyncio.AbstractEventLoop | None = None

    def start(self) -> asyncio.Future[None]:
        caller = self._caller = asyncio.get_running_loop()
        ended: asyncio.Future[None] = caller.create_future()

        def report(error: BaseException | None) -> None:
            if ended.done():  # cancelled meanwhile
                return
            if error is None:
                ended.set_result(None)
            else:
                ended.set_exception(error)

        def main() -> None:
            error = None
            try:
                run(self._run)
            except BaseException as exc:  # reported to the caller's loop
                error = exc
            caller.call_soon_threadsafe(report, error)

        # A thread woken by I/O waits for the GIL until the running one yields it, at
        # most the switch interval (5 ms by default): with the API busy, every step of
        # a check paid that. 1 ms keeps the checks' lateness down.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        threading.Thread(target=main, name="upwatch-checker", daemon=True).start()
        return ended

    async def _run(self) -> None:
        store = await open_store(self._settings, migrate=False)
        try:
            worker = Worker(self._settings, store, metrics=self._metrics)
            stop = asyncio.Event()
            self._worker, self._stop = worker, stop
            # Published last, and the stop flag read after it: a stop() that found no
            # loop yet is seen here instead.
            self._loop = asyncio.get_running_loop()
            assert self._caller is not None
            self._caller.call_soon_threadsafe(self.checking.set)
            if not self._stop_asked.is_set():
                await worker.run(stop)
        finally:
            await store.close()

    def wake(self) -> None:
        """Look for due monitors now (the API created or changed one). Thread-safe."""
        if self._worker is not None:
            self._soon(self._worker.wake)

    def stop(self) -> None:
        """Finish or drop in-flight checks, flush, end the thread. Thread-safe."""
        self._stop_asked.set()
        if self._stop is not None:
            self._soon(self._stop.set)

    def _soon(self, callback: Callable[[], object]) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to do
                self._loop.call_soon_threadsafe(callback)


def export_metrics(settings: Settings, registry: CollectorRegistry) -> WSGIServer | None:
    """The process's metrics over HTTP without a key, on a thread of prometheus_client's
    (``upwatch worker --metrics-port``); None when no port is set."""
    if settings.metrics_port is None:
        return None
    where = _hostport(settings.metrics_host, settings.metrics_port)
    try:
        server, _ = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None
    log.info("metrics on http://%s/metrics", where)
    return server


def export_to_parent(registry: CollectorRegistry) -> WSGIServer:
    """A checker process of `serve`: its metrics on a free loopback port, told to the
    parent on the first line of standard output once it checks (checkers.py)."""
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    return server


def close_exporter(server: WSGIServer) -> None:
    """Stop serving metrics (waits up to half a second for its loop to notice)."""
    server.shutdown()
    server.server_close()


def listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything else starts, so that a taken
    port is a one-line error rather than a server that half starts."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
            0
        ][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {_hostport(host, port)}: {exc.strerror or exc}"
        ) from None
    return sock


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
