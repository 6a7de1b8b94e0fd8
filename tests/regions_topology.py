"""Two regions on one machine (127.0.0.1 only), for tests/test_regions_topology.py and
``python -m bench.regions``.

- The primary region ("iad"): a Redis primary, the primary member of a MongoDB replica
  set, and ``edge-onboard serve`` reaching both directly.
- A far region ("syd"): a Redis replica (``replicaof``) and a second member of the same
  replica set (priority 0, no vote: it never becomes primary and writes never wait for
  it), and ``edge-onboard serve`` reading them. It reaches the primary's Redis and
  MongoDB member only through ``DelayProxy`` (80 ms each way), and so do the replicas'
  own replication streams, as across an ocean.
- In front, a ``FlyEdge`` per region: a double of Fly's proxy as Fly documents it. It
  sends a request to the app in its own region; an answer carrying ``fly-replay:
  region=R`` is dropped and the original request (up to 1 MB) is sent again to region
  R's app, across the slow link, with ``fly-replay-src`` added.

With ``replicas=False`` the far app runs as the service did before regions: no region
settings, every read and write through the slow link to the primary's stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from tests import services
from tests.live import run_cli, serve, serving

ONE_WAY = 0.080  # seconds each way between the regions
PRIMARY, FAR = "iad", "syd"
MAX_REPLAY_BODY = 1024 * 1024


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that delivers every byte ``delay`` seconds after it
    arrived, in both directions (latency, not bandwidth: bytes keep flowing)."""

    def __init__(self, target_port: int, delay: float = ONE_WAY) -> None:
        self.target_port = target_port
        self.delay = delay
        self.connections = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="delay-proxy")
        self.port = 0

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=256)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in self._open:
                writer.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.run_until_complete(asyncio.sleep(0.05))
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            self._open.discard(writer)
            return
        self._open.add(up_writer)
        with contextlib.suppress(asyncio.CancelledError):  # the proxy stopping
            await asyncio.gather(
                self._pipe(reader, up_writer),
                self._pipe(up_reader, writer),
                return_exceptions=True,
            )
        self._open.difference_update({writer, up_writer})

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
        except OSError:
            pass
        queue.put_nowait((time.monotonic() + self.delay, b""))
        with contextlib.suppress(Exception):
            await sender
        writer.close()


@dataclasses.dataclass
class Replay:
    method: str
    path: str
    state: str
    to: str


class FlyEdge:
    """A double of Fly's proxy in one region (pure ASGI): forwards to this region's app;
    honours ``fly-replay: region=R[;state=S]`` by sending the original request to region
    R's app with ``fly-replay-src: instance=…;region=…;t=…;state=…``."""

    def __init__(self, region: str, apps: dict[str, str]) -> None:
        self.region = region
        self.apps = apps  # region -> the app's URL as this edge reaches it
        self.replays: list[Replay] = []
        self.forwarded: list[tuple[str, str]] = []
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self._client is not None:
                await self._client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in (b"host", b"content-length", b"transfer-encoding")
        ]
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        self.forwarded.append((scope["method"], scope["path"]))
        response = await self._send(self.region, scope["method"], path, headers, body)
        replay = response.headers.get("fly-replay")
        if replay is not None:
            fields = dict(part.split("=", 1) for part in replay.split(";") if "=" in part)
            target, state = fields.get("region", ""), fields.get("state", "")
            if target not in self.apps or len(body) > MAX_REPLAY_BODY:
                await self._answer(send, 502, [], b"fly-replay failed")
                return
            self.replays.append(Replay(scope["method"], scope["path"], state, target))
            src = f"instance=edge{self.region};region={self.region};t={int(time.time() * 1e6)}"
            headers.append(("fly-replay-src", f"{src};state={state}"))
            response = await self._send(target, scope["method"], path, headers, body)
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k not in ("content-length", "transfer-encoding", "content-encoding", "fly-replay")
        ]
        await self._answer(send, response.status_code, out, response.content)

    async def _send(
        self, region: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> httpx.Response:
        assert self._client is not None
        return await self._client.request(
            method, self.apps[region] + path, headers=headers, content=body
        )

    @staticmethod
    async def _answer(
        send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclasses.dataclass
class Topology:
    far_edge: str  # where a client in the far region sends its requests
    primary_edge: str  # where a client in the primary region sends them
    far: FlyEdge
    primary: FlyEdge
    far_app: str
    primary_app: str
    far_pid: int
    primary_pid: int
    key: str  # a test-mode API key
    work: Path
    redis_to_primary: DelayProxy
    mongo_to_primary: DelayProxy
    redis_replica_port: int
    mongo_ports: tuple[int, int]  # the primary member, the far member


def _start_redis(stack: contextlib.ExitStack, tmp: str, name: str, *extra: str) -> int:
    binary = shutil.which("redis-server")
    if binary is None:
        raise services.ServiceUnavailable("redis-server is not on PATH")
    folder = Path(tmp, name)
    folder.mkdir()

    def argv(port: int) -> list[str]:
        return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(folder), *extra]  # fmt: skip

    port, _ = stack.enter_context(
        services._process(
            "redis-server", argv, Path(tmp, f"{name}.log"), services._redis_ready, 10.0
        )
    )
    return port


def _wait(what: str, probe: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)


def _replica_linked(port: int) -> bool:
    _, info = services._redis_call("127.0.0.1", port, ["PING"], ["INFO", "replication"])
    return b"master_link_status:up" in (info or b"")


def _start_replica_set(stack: contextlib.ExitStack, tmp: str) -> tuple[int, int, DelayProxy, str]:
    """Two mongod members; the primary's address in the set's config is the slow link,
    so the far member and the far app reach it across the ocean."""
    binary, env = services._find_mongod()
    name = f"rs-{secrets.token_hex(4)}"

    def argv(port: int) -> list[str]:
        return services._mongod_argv(binary, tmp, port, name)

    ports = []
    for i in range(2):
        port, _ = stack.enter_context(
            services._process(
                "mongod", argv, Path(tmp, f"mongod-{i}.log"), services._mongod_ready, 30.0, env
            )
        )
        ports.append(port)
    near, far = ports
    link = stack.enter_context(DelayProxy(near))
    config = {
        "_id": name,
        "members": [
            {"_id": 0, "host": f"127.0.0.1:{link.port}", "priority": 1},
            {"_id": 1, "host": f"127.0.0.1:{far}", "priority": 0, "votes": 0},
        ],
    }
    with services._direct(near, timeout_ms=30000) as client:
        client.admin.command("replSetInitiate", config)

        def synced() -> bool:
            states = sorted(
                m["stateStr"] for m in client.admin.command("replSetGetStatus")["members"]
            )
            return states == ["PRIMARY", "SECONDARY"]

        _wait("the replica set did not come up", synced)
    return near, far, link, name


@contextlib.contextmanager
def regions(
    *, replicas: bool = True, extra_env: dict[str, str] | None = None
) -> Iterator[Topology]:
    """The two regions, their apps and their edges (see the module's docstring)."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-regions-"))
        work = Path(tmp)
        redis_port = _start_redis(stack, tmp, "redis-primary")
        redis_link = stack.enter_context(DelayProxy(redis_port))
        replica_port = _start_redis(
            stack, tmp, "redis-replica", "--replicaof", "127.0.0.1", str(redis_link.port)
        )
        _wait("the Redis replica did not link", lambda: _replica_linked(replica_port))
        near, far_member, mongo_link, rs = _start_replica_set(stack, tmp)

        # The edges first: the apps' public URL is the far edge's (the app's one address).
        far_fly, primary_fly = FlyEdge(FAR, {}), FlyEdge(PRIMARY, {})
        far_edge = stack.enter_context(serving(far_fly))
        primary_edge = stack.enter_context(serving(primary_fly))
        env = {
            "EDGE_SECRET_KEY": secrets.token_urlsafe(48),
            "EDGE_PUBLIC_URL": far_edge,
            "EDGE_WEBHOOK_ALLOW_PRIVATE": "1",
            "EDGE_RATE_LIMIT_API": "100000",
            "EDGE_RATE_LIMIT_PUBLIC": "100000",
            "EDGE_DELIVERY_SCHEDULE": "0,1,1",
            **(extra_env or {}),
        }
        primary_env = {
            **env,
            "EDGE_STORAGE_URL": f"mongodb://127.0.0.1:{near}/edge?directConnection=true",
            "EDGE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
        if replicas:
            primary_env |= {"EDGE_REGION": PRIMARY, "EDGE_PRIMARY_REGION": PRIMARY}
        key = run_cli("keys", "create", "--org", "acme", "--test", cwd=work, env=primary_env)
        primary_app, primary_proc = stack.enter_context(serve(work, env=primary_env, wait=60))
        if replicas:
            far_env = {
                **env,
                "EDGE_REGION": FAR,
                "EDGE_PRIMARY_REGION": PRIMARY,
                "EDGE_STORAGE_URL": (
                    f"mongodb://127.0.0.1:{far_member},127.0.0.1:{mongo_link.port}/edge"
                    f"?replicaSet={rs}"
                ),
                "EDGE_REDIS_URL": f"redis://127.0.0.1:{redis_link.port}/0",
                "EDGE_REDIS_REPLICA_URL": f"redis://127.0.0.1:{replica_port}/0",
            }
        else:  # before regions: everything across the slow link to the primary's stores
            far_env = {
                **env,
                "EDGE_STORAGE_URL": (
                    f"mongodb://127.0.0.1:{mongo_link.port}/edge?directConnection=true"
                ),
                "EDGE_REDIS_URL": f"redis://127.0.0.1:{redis_link.port}/0",
            }
        far_dir = work / "far"
        far_dir.mkdir()
        far_app, far_proc = stack.enter_context(serve(far_dir, env=far_env, wait=60))
        # Fly's backhaul between the regions: the replayed request crosses the ocean too.
        primary_from_far = stack.enter_context(DelayProxy(int(primary_app.rsplit(":", 1)[1])))
        far_fly.apps |= {FAR: far_app, PRIMARY: f"http://127.0.0.1:{primary_from_far.port}"}
        primary_fly.apps |= {PRIMARY: primary_app}
        yield Topology(
            far_edge=far_edge,
            primary_edge=primary_edge,
            far=far_fly,
            primary=primary_fly,
            far_app=far_app,
            primary_app=primary_app,
            far_pid=far_proc.pid,
            primary_pid=primary_proc.pid,
            key=key.stdout.strip().splitlines()[-1],
            work=work,
            redis_to_primary=redis_link,
            mongo_to_primary=mongo_link,
            redis_replica_port=replica_port,
            mongo_ports=(near, far_member),
        )


def owner_of_connection(peer_port: int, pids: dict[str, int]) -> str | None:
    """Which of ``pids`` (name -> process id) holds the local TCP port ``peer_port``:
    read from /proc, for telling which app a webhook delivery came from."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == peer_port:
                    inodes.add(fields[9])
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return name
    return None
