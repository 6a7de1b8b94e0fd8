"""How ``edge-onboard serve`` runs: one process, or a supervisor and ``EDGE_WORKERS``
worker processes, each serving the app on hypercorn (the default) or Granian
(``EDGE_SERVER``).

Every worker opens storage and Redis, binds its own listening socket, builds the app
and serves it until SIGTERM or SIGINT, then finishes the requests in flight. With
several workers each socket is bound with SO_REUSEPORT, so the kernel spreads new
connections among the workers: with one socket shared by all (what hypercorn's own
workers do) the worker that wakes first can take every connection while the others
idle. The supervisor checks storage, Redis and the port once, says ``listening`` once
every worker listens, passes a stop on to the workers and exits with their status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

import anyio
from starlette.applications import Starlette

from edge_onboard.config import Settings
from edge_onboard.core import logs
from edge_onboard.startup import (
    StartupError,
    check_port,
    listen_socket,
    open_redis,
    open_storage,
    summary,
)

log = logging.getLogger("edge_onboard")


def serve(settings: Settings) -> int:
    """Serve until stopped; 0 after a clean stop. Raises ``StartupError``."""
    if settings.workers == 1:
        asyncio.run(run_worker(settings, lambda address: log.info(summary(settings, address))))
        log.info("edge-onboard stopped")
        return 0
    return _supervise(settings)


async def run_worker(settings: Settings, on_listening: Callable[[tuple[str, int]], None]) -> None:
    """One worker: storage and Redis, then the app on the configured server until a
    SIGTERM or SIGINT. ``on_listening`` gets the bound address once it accepts."""
    from edge_onboard.app import create_app

    store = await open_storage(settings)
    try:
        redis = await open_redis(settings)
        try:
            await serve_app(
                create_app(settings, storage=store, redis=redis), settings, on_listening
            )
        finally:
            if redis is not None:
                await redis.aclose()
    finally:
        await store.close()


async def serve_app(
    app: Starlette, settings: Settings, on_listening: Callable[[tuple[str, int]], None]
) -> None:
    """``app`` on the configured server and address until a SIGTERM or SIGINT, then
    the requests in flight finish and the app's lifespan ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.server == "granian":
        await _granian(app, settings, stop, on_listening)
    else:
        await _hypercorn(app, settings, stop, on_listening)


async def _hypercorn(
    app: Starlette,
    settings: Settings,
    stop: asyncio.Event,
    on_listening: Callable[[tuple[str, int]], None],
) -> None:
    from edge_onboard.config.hypercorn import hypercorn_config, serve_asgi

    config = hypercorn_config(settings)
    sock = listen_socket(settings, reuse_port=settings.workers > 1)
    on_listening(sock.getsockname()[:2])  # connections queue from here on
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns it from here
    await serve_asgi(app, config, stop.wait)


async def _granian(
    app: Starlette,
    settings: Settings,
    stop: asyncio.Event,
    on_listening: Callable[[tuple[str, int]], None],
) -> None:
    from edge_onboard.config.granian import granian_server, serve_until

    sock = listen_socket(settings, reuse_port=settings.workers > 1)
    address = sock.getsockname()[:2]
    listened: list[bool] = []

    def listening() -> None:
        listened.append(True)
        on_listening(address)

    await serve_until(granian_server(app, settings, sock, listening), stop)
    if not listened:  # Granian logged why (its errors reach our log)
        raise StartupError("Granian stopped before the app started")


def exit_after_granian(code: int) -> None:
    """End a process that ran Granian without the interpreter's shutdown.

    Granian's Rust threads can still hold a connection a client kept open after the
    server stopped; when the interpreter finalises under them they abort with a
    panic. Everything of ours is closed by now: flush the logs and leave, as
    multiprocessing's own children do.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _supervise(settings: Settings) -> int:
    anyio.run(_check_backends, settings)  # once here, in one line, not once per worker
    address = check_port(settings)
    settings = dataclasses.replace(settings, port=address[1])  # a port 0 is now chosen
    # Workers are forked once the app's modules are imported here: none imports them
    # again (a spawned worker took seconds to start on a busy machine) and they share
    # those pages. Nothing here holds a client, a thread or an event loop by now.
    import edge_onboard.app  # noqa: F401

    context = multiprocessing.get_context("fork")
    workers: list[tuple[BaseProcess, Connection]] = []

    def terminate() -> None:
        for process, _ in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        terminate()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    for index in range(settings.workers):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main, args=(settings, sender), name=f"edge-onboard-worker-{index + 1}"
        )
        process.start()
        sender.close()
        workers.append((process, receiver))
    failure = None
    for worker, pipe in workers:
        failure = _await_listening(worker, pipe)
        if failure is not None or stopped:
            break
    if failure is None and not stopped:
        log.info(summary(settings, address))
    else:
        terminate()  # one worker could not start (or a stop came first): end the others
    running = {worker.sentinel: worker for worker, _ in workers}
    while running:
        ready = wait(list(running))
        for sentinel in [s for s in running if s in ready]:
            ended = running.pop(sentinel)
            if ended.exitcode != 0 and not stopped and failure is None:
                # Not half a service: the rest stop too, for the platform to restart it.
                log.error("a worker process exited (status %s); stopping", ended.exitcode)
                failure = f"worker exited with status {ended.exitcode}"
                terminate()
    for worker, pipe in workers:
        worker.join()
        pipe.close()
    if failure is not None and not stopped and not failure.startswith("worker exited"):
        raise StartupError(failure)
    log.info("edge-onboard stopped")
    return 0 if all(worker.exitcode == 0 for worker, _ in workers) else 1


def _await_listening(process: BaseProcess, receiver: Connection) -> str | None:
    """Wait until the worker listens; its start-up error if it cannot."""
    gone = "a worker process exited before it listened"
    for ready in wait([receiver, process.sentinel]):
        if ready is receiver:
            try:
                message: str = receiver.recv()
            except EOFError:
                return gone
            return None if message == "listening" else message
    return gone


def _worker_main(settings: Settings, parent: Connection) -> None:
    """A worker process: serve, telling the supervisor when it listens (or why not)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until its loop handles it
    logs.configure(settings.log_level, settings.log_format)
    code = 0
    try:
        asyncio.run(run_worker(settings, lambda address: parent.send("listening")))
    except StartupError as exc:
        parent.send(str(exc))
        code = 1
    if settings.server == "granian":
        exit_after_granian(code)
    sys.exit(code)


async def _check_backends(settings: Settings) -> None:
    """Open storage (schema, indexes) and Redis once, to fail here in one line."""
    store = await open_storage(settings)
    await store.close()
    redis = await open_redis(settings, max_connections=1)
    if redis is not None:
        await redis.aclose()
