"""Real Redis and MongoDB servers for the test suite.

Each context manager yields a URL. It is taken from the environment when set
(``EDGE_TEST_REDIS_URL`` / ``EDGE_TEST_MONGODB_URL``); otherwise a private
server is started on a free port with a throw-away data folder and stopped on
exit. ``ServiceUnavailable`` is raised when no server can be provided: tests
should skip on it, unless ``services_required()`` (set in CI) says to fail.

For scale-out tests, ``redis_cluster()`` starts a Redis Cluster (3 masters, 3
replicas) and ``mongo_replica_set()`` a 3-member replica set; both yield handles
that can kill a member and wait for the failover.

``.ci/install-services.sh`` puts a test mongod into the cache folder searched
here. Run ``python tests/services.py`` to check that both services work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

REDIS_URL_ENV = "EDGE_TEST_REDIS_URL"
REDIS_CLUSTER_URL_ENV = "EDGE_TEST_REDIS_CLUSTER_URL"
MONGODB_URL_ENV = "EDGE_TEST_MONGODB_URL"
MONGOD_ENV = "EDGE_TEST_MONGOD"
CACHE_ENV = "EDGE_TEST_CACHE"
REQUIRE_ENV = "EDGE_TEST_REQUIRE_SERVICES"

REDIS_START_TIMEOUT = 10.0
MONGO_START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REPLICA_SET = "rs0"
CLUSTER_START_TIMEOUT = 30.0
# How long cluster nodes wait for a silent master before its replica takes over (the
# server's default is 15 s; managed services pick their own).
CLUSTER_NODE_TIMEOUT_MS = 1000
FAILOVER_TIMEOUT = 30.0

_T = TypeVar("_T")

# Choosing a free port and the server binding it are not atomic, so another
# process can take the port in between; such a start is retried on a new port.
_PORT_ATTEMPTS = 3


class ServiceUnavailable(Exception):
    """The service cannot be provided; the message says why."""


def services_required() -> bool:
    """Whether a missing service must fail the tests rather than skip them."""
    return os.environ.get(REQUIRE_ENV) == "1"


def unavailable(message: str) -> NoReturn:
    """A test service is missing: fail where services are required (CI sets
    EDGE_TEST_REQUIRE_SERVICES=1), skip only on a developer's machine without it."""
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis server that is running for the duration."""
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return

    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable(
            f"redis-server is not on PATH and {REDIS_URL_ENV} is not set "
            "(install the Debian package redis-server or run .ci/install-services.sh)"
        )

    with tempfile.TemporaryDirectory(prefix="edge-redis-") as tmp:

        def argv(port: int) -> list[str]:
            return [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", tmp,
            ]  # fmt: skip

        log = Path(tmp, "redis-server.log")
        with _server("redis-server", argv, log, _redis_ready, REDIS_START_TIMEOUT) as port:
            yield f"redis://127.0.0.1:{port}/0"


def _mongod_argv(binary: str, tmp: str, port: int, replica_set: str | None) -> list[str]:
    """A test mongod on 127.0.0.1:``port``, its data in a folder of ``tmp``, small cache."""
    dbpath = Path(tmp, f"db-{port}")
    dbpath.mkdir(exist_ok=True)
    return [
        binary,
        "--dbpath", str(dbpath),
        "--bind_ip", "127.0.0.1",
        "--port", str(port),
        "--nounixsocket",
        "--wiredTigerCacheSizeGB", "0.25",
        *(["--replSet", replica_set] if replica_set else []),
        "--quiet",
    ]  # fmt: skip


@contextlib.contextmanager
def mongo_server(*, replica_set: bool = True, private: bool = False) -> Iterator[str]:
    """Yield the URL of a one-node MongoDB replica set (so transactions and
    change streams work) that is running for the duration. ``private`` always starts
    a server of its own (a test may stop or pause it); ``replica_set=False`` starts a
    standalone server (what the service must refuse)."""
    url = os.environ.get(MONGODB_URL_ENV)
    if url and replica_set and not private:
        yield url
        return

    binary, env = _find_mongod()
    with tempfile.TemporaryDirectory(prefix="edge-mongod-") as tmp:

        def argv(port: int) -> list[str]:
            return _mongod_argv(binary, tmp, port, REPLICA_SET if replica_set else None)

        deadline = time.monotonic() + MONGO_START_TIMEOUT
        log = Path(tmp, "mongod.log")
        with _server("mongod", argv, log, _mongod_ready, MONGO_START_TIMEOUT, env) as port:
            if not replica_set:
                yield f"mongodb://127.0.0.1:{port}/"
                return
            try:
                _initiate_replica_set(port, deadline)
            except Exception as exc:
                raise ServiceUnavailable(
                    f"mongod started but its replica set did not become primary: {exc}\n"
                    f"log tail:\n{_tail(log)}"
                ) from exc
            yield f"mongodb://127.0.0.1:{port}/?replicaSet={REPLICA_SET}&directConnection=true"


@dataclasses.dataclass
class RedisClusterNodes:
    """A Redis Cluster: its URL and, when started here, its nodes' processes by port."""

    url: str
    processes: dict[int, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)

    def masters(self) -> dict[int, list[tuple[int, int]]]:
        """Port → slot ranges of each master serving slots, as a live node sees it."""
        text = self._ask(["CLUSTER", "NODES"]).decode()
        masters: dict[int, list[tuple[int, int]]] = {}
        for line in text.splitlines():
            fields = line.split()
            flags = fields[2].split(",")
            if "master" not in flags or "fail" in flags or len(fields) < 9:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            ranges = [tuple(int(n) for n in f.split("-")) for f in fields[8:] if f[0].isdigit()]
            masters[port] = [(r[0], r[-1]) for r in ranges]
        return masters

    def master_of(self, slot: int) -> int:
        """The port of the master serving ``slot``."""
        for port, ranges in self.masters().items():
            if any(low <= slot <= high for low, high in ranges):
                return port
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL one node, as when its machine dies: no goodbye to the others."""
        proc = self.processes[port]
        proc.kill()
        proc.wait()

    def wait_for_failover(self, dead: int, timeout: float = FAILOVER_TIMEOUT) -> float:
        """Wait until every slot of the dead master is served by a promoted replica and
        every live node says the cluster is ok; return how long that took (s)."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            with contextlib.suppress(OSError):
                if dead not in self.masters() and self._healthy():
                    return time.monotonic() - started
            if time.monotonic() > deadline:
                raise TimeoutError(f"no failover of the master on port {dead} in {timeout:.0f} s")
            time.sleep(0.05)

    def _live(self) -> list[int]:
        return [port for port, proc in self.processes.items() if proc.poll() is None]

    def _ask(self, command: list[str]) -> bytes:
        for port in self._live():
            with contextlib.suppress(OSError):
                (reply,) = _redis_call("127.0.0.1", port, command)
                if reply is not None:
                    return reply
        raise OSError("no cluster node answered")

    def _healthy(self) -> bool:
        """Every live node sees all slots served and every live replica is in sync."""
        for port in self._live():
            state, replication = _redis_call(
                "127.0.0.1", port, ["CLUSTER", "INFO"], ["INFO", "replication"]
            )
            if b"cluster_state:ok" not in (state or b""):
                return False
            if b"role:slave" in (replication or b"") and (
                b"master_link_status:up" not in (replication or b"")
                or b"master_sync_in_progress:0" not in (replication or b"")
            ):
                return False
        return True


@contextlib.contextmanager
def deployment_env(name: str) -> Iterator[dict[str, str]]:
    """A real Redis and a fresh MongoDB database, as the environment a deployment's
    processes share (with the secret key MongoDB needs)."""
    with redis_server() as redis_url, mongo_server() as mongo_url:
        database = f"edge_{name}_{uuid.uuid4().hex[:8]}"
        yield {
            "EDGE_REDIS_URL": redis_url,
            "EDGE_STORAGE_URL": mongo_url.replace("/?", f"/{database}?"),
            "EDGE_SECRET_KEY": f"{name}-test-key-" + "k" * 32,
        }


@contextlib.contextmanager
def redis_cluster(*, private: bool = False) -> Iterator[RedisClusterNodes]:
    """A Redis Cluster of 3 masters and 3 replicas (``EDGE_TEST_REDIS_CLUSTER_URL`` when
    set, unless ``private``: a test that kills nodes needs a cluster of its own)."""
    url = os.environ.get(REDIS_CLUSTER_URL_ENV)
    if url and not private:
        yield RedisClusterNodes(url)
        return

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        missing = "redis-server" if server is None else "redis-cli"
        raise ServiceUnavailable(
            f"{missing} is not on PATH and {REDIS_CLUSTER_URL_ENV} is not set (install the "
            "Debian packages redis-server and redis-tools, or run .ci/install-services.sh)"
        )

    with (
        tempfile.TemporaryDirectory(prefix="edge-redis-cluster-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        deadline = time.monotonic() + CLUSTER_START_TIMEOUT

        def argv(port: int) -> list[str]:
            folder = Path(tmp, f"node-{port}")
            folder.mkdir(exist_ok=True)
            return [
                server,
                "--port", str(port),
                # The cluster bus gets a free port too (by default it is port + 10000).
                "--cluster-port", str(_free_port()),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS),
                # A replica's first sync starts at once, not after the default 5 s wait
                # for other replicas to share the transfer.
                "--repl-diskless-sync-delay", "0",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(folder),
            ]  # fmt: skip

        nodes = RedisClusterNodes("")
        for i in range(6):
            log = Path(tmp, f"node-{i}.log")
            port, proc = stack.enter_context(
                _process("redis-server", argv, log, _redis_ready, REDIS_START_TIMEOUT)
            )
            nodes.processes[port] = proc
        addresses = [f"127.0.0.1:{port}" for port in nodes.processes]
        create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1"]
        try:
            done = subprocess.run(
                [*create, "--cluster-yes"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CLUSTER_START_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceUnavailable(f"redis-cli --cluster create hung: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").splitlines()
            raise ServiceUnavailable(
                "redis-cli --cluster create failed; output tail:\n" + "\n".join(output[-20:])
            )
        while not _quietly(nodes._healthy):
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"the Redis Cluster was not ready after {CLUSTER_START_TIMEOUT:.0f} s; "
                    f"log tail of one node:\n{_tail(Path(tmp, 'node-0.log'))}"
                )
            time.sleep(0.05)
        nodes.url = f"redis+cluster://{addresses[0]}"
        yield nodes


def _quietly(probe: Callable[[], bool]) -> bool:
    try:
        return probe()
    except OSError:
        return False


@dataclasses.dataclass
class ReplicaSetMembers:
    """A MongoDB replica set started here: its URL and its members' processes by port."""

    url: str
    name: str
    processes: dict[int, subprocess.Popen[bytes]]

    def primary(self) -> int | None:
        """The port of the member that is primary now, as the live members see it."""
        for port in self._live():
            try:
                with _direct(port, timeout_ms=1000) as client:
                    hello = client.admin.command("hello")
            except PyMongoError:
                continue
            if hello.get("isWritablePrimary"):
                return port
        return None

    def wait_for_primary(self, timeout: float = FAILOVER_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while (port := self.primary()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no primary elected in {timeout:.0f} s")
            time.sleep(0.05)
        return port

    def step_down(self, seconds: int = 10) -> int:
        """Ask the primary to step down (``replSetStepDown``): it stays ineligible for
        ``seconds``; return its port."""
        port = self.wait_for_primary()
        # The primary drops its connections as it steps down, this one included.
        with contextlib.suppress(ConnectionFailure), _direct(port, timeout_ms=15000) as client:
            client.admin.command("replSetStepDown", seconds, secondaryCatchUpPeriodSecs=5)
        return port

    def kill(self, port: int) -> None:
        """SIGKILL a member, as when its machine dies."""
        proc = self.processes[port]
        proc.kill()
        proc.wait()

    def _live(self) -> list[int]:
        return [port for port, proc in self.processes.items() if proc.poll() is None]


def _direct(port: int, *, timeout_ms: int) -> MongoClient[dict[str, Any]]:
    return MongoClient(
        f"mongodb://127.0.0.1:{port}/",
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
    )


@contextlib.contextmanager
def mongo_replica_set(*, election_timeout_ms: int | None = None) -> Iterator[ReplicaSetMembers]:
    """A private 3-member replica set (three mongod processes), every member in sync.
    ``election_timeout_ms`` sets how long secondaries wait for a silent primary before
    they elect another (MongoDB's default: 10 s)."""
    binary, env = _find_mongod()
    name = f"rs-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="edge-mongod-rs-") as tmp,
        contextlib.ExitStack() as stack,
    ):

        def argv(port: int) -> list[str]:
            return _mongod_argv(binary, tmp, port, name)

        deadline = time.monotonic() + MONGO_START_TIMEOUT
        processes: dict[int, subprocess.Popen[bytes]] = {}
        for i in range(3):
            log = Path(tmp, f"mongod-{i}.log")
            port, proc = stack.enter_context(
                _process("mongod", argv, log, _mongod_ready, MONGO_START_TIMEOUT, env)
            )
            processes[port] = proc
        hosts = [f"127.0.0.1:{port}" for port in processes]
        config: dict[str, Any] = {
            "_id": name,
            "members": [{"_id": i, "host": host} for i, host in enumerate(hosts)],
        }
        if election_timeout_ms is not None:
            config["settings"] = {"electionTimeoutMillis": election_timeout_ms}
        try:
            _initiate_members(next(iter(processes)), config, deadline)
        except Exception as exc:
            raise ServiceUnavailable(
                f"the 3-member replica set did not come up: {exc}\n"
                f"log tail:\n{_tail(Path(tmp, 'mongod-0.log'))}"
            ) from exc
        members = ReplicaSetMembers(
            f"mongodb://{','.join(hosts)}/?replicaSet={name}", name, processes
        )
        try:
            yield members
        finally:
            # Throw-away data: SIGKILL spares the shutdown of a primary, which waits
            # for its secondaries (up to 15 s, longer once one of them is gone).
            for port in members._live():
                members.kill(port)


def _initiate_members(port: int, config: dict[str, Any], deadline: float) -> None:
    """Initiate the set and wait until one member is primary and the others secondaries."""
    timeout_ms = max(1, int((deadline - time.monotonic()) * 1000))
    with _direct(port, timeout_ms=timeout_ms) as client:
        client.admin.command("replSetInitiate", config)
        while True:
            status = client.admin.command("replSetGetStatus")
            states = sorted(member["stateStr"] for member in status["members"])
            if states == ["PRIMARY", "SECONDARY", "SECONDARY"]:
                return
            if states == ["SECONDARY"] * 3:
                # All in sync and no primary yet: elect this one now rather than after
                # the election timeout (10 s by default) that a new set waits out.
                with contextlib.suppress(OperationFailure):
                    client.admin.command("replSetStepUp")
            if time.monotonic() > deadline:
                raise TimeoutError(f"members still {states} at the start-up deadline")
            time.sleep(0.05)


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edge-onboard")


def _find_mongod() -> tuple[str, dict[str, str]]:
    """Return the mongod binary to run and the environment to run it with."""
    explicit = os.environ.get(MONGOD_ENV)
    cached = _cache_dir() / "mongod" / "mongod"
    on_path = shutil.which("mongod")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ServiceUnavailable(f"{MONGOD_ENV}={explicit} is not an executable file")
        binary = Path(explicit)
    elif os.access(cached, os.X_OK):
        binary = cached
    elif on_path is not None:
        binary = Path(on_path)
    else:
        raise ServiceUnavailable(
            f"no mongod found: set {MONGODB_URL_ENV} or {MONGOD_ENV}, "
            f"run .ci/install-services.sh (fills {cached.parent}), or put mongod on PATH"
        )

    env = dict(os.environ)
    # The build unpacked by .ci/install-services.sh needs the OpenSSL 1.1
    # libraries stored beside it.
    if (binary.parent / "libssl.so.1.1").exists():
        libs = [str(binary.parent), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, libs))
    return str(binary), env


@contextlib.contextmanager
def _server(
    name: str,
    argv: Callable[[int], list[str]],
    log: Path,
    ready: Callable[[int, int], bool],
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[int]:
    """Start a server on a free port with its output in ``log``, wait until
    ``ready(port, pid)``, yield the port, and stop the server on exit.

    ``ready`` must check that the server answering is this process: when the
    port was taken by someone else, that one answers while ours exits."""
    with _process(name, argv, log, ready, timeout, env) as (port, _):
        yield port


@contextlib.contextmanager
def _process(
    name: str,
    argv: Callable[[int], list[str]],
    log: Path,
    ready: Callable[[int, int], bool],
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``_server``, yielding the process too (for tests that kill it)."""
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv(port), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            if _wait_ready(name, proc, port, log, ready, timeout, retry=attempt < _PORT_ATTEMPTS):
                break
        except BaseException:
            _stop(proc)
            raise
    try:
        yield port, proc
    finally:
        _stop(proc)


def _wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    port: int,
    log: Path,
    ready: Callable[[int, int], bool],
    timeout: float,
    *,
    retry: bool,
) -> bool:
    """Poll until the server is ready (True) or lost its port and may be retried (False)."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            tail = _tail(log)
            if retry and "Address already in use" in tail:
                return False
            raise ServiceUnavailable(
                f"{name} exited with code {code} during start-up; log tail:\n{tail}"
            )
        if ready(port, proc.pid):
            return True
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"{name} was not ready after {timeout:.0f} s; log tail:\n{_tail(log)}"
            )
        time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _redis_ready(port: int, pid: int) -> bool:
    try:
        pong, info = _redis_call("127.0.0.1", port, ["PING"], ["INFO", "server"])
    except OSError:
        return False
    return pong == b"PONG" and f"process_id:{pid}\r\n".encode() in (info or b"")


def _mongod_ready(port: int, pid: int) -> bool:
    try:
        # A cheap probe first: pymongo would wait out its timeout on a refused connection.
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{port}/",
        directConnection=True,
        serverSelectionTimeoutMS=1000,
        connectTimeoutMS=1000,
        socketTimeoutMS=1000,
    )
    try:
        with client:
            return bool(client.admin.command("serverStatus")["pid"] == pid)
    except PyMongoError:
        return False


def _redis_call(
    host: str, port: int, *commands: Sequence[str], timeout: float = 1.0
) -> list[bytes | None]:
    """Send commands over one connection in the Redis protocol and return their
    replies (simple, integer or bulk strings; None for a nil bulk string)."""
    request = b""
    for command in commands:
        request += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg.encode()
            request += b"$%d\r\n%s\r\n" % (len(data), data)
    replies: list[bytes | None] = []
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        sock.makefile("rb") as stream,
    ):
        sock.sendall(request)
        for command in commands:
            line = stream.readline().rstrip(b"\r\n")
            kind, body = line[:1], line[1:]
            if kind == b"$":
                size = int(body)
                replies.append(None if size < 0 else stream.read(size + 2)[:-2])
            elif kind in (b"+", b":"):
                replies.append(body)
            else:
                # Includes "-LOADING ...", the normal answer of a server still starting.
                raise OSError(f"redis replied {line!r} to {command[0]}")
    return replies


def _initiate_replica_set(port: int, deadline: float) -> None:
    timeout_ms = max(1, int((deadline - time.monotonic()) * 1000))
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{port}/", directConnection=True, serverSelectionTimeoutMS=timeout_ms
    )
    with client:
        member = {"_id": 0, "host": f"127.0.0.1:{port}"}
        client.admin.command("replSetInitiate", {"_id": REPLICA_SET, "members": [member]})
        while not client.admin.command("hello").get("isWritablePrimary"):
            if time.monotonic() > deadline:
                raise TimeoutError("not primary before the start-up deadline")
            time.sleep(0.02)


def _check_redis(url: str) -> None:
    parts = urlsplit(url)
    host, port, db = parts.hostname or "127.0.0.1", parts.port or 6379, parts.path.strip("/") or "0"
    key, value = "edge-onboard:services-check", str(time.time())
    replies = _redis_call(
        host, port, ["SELECT", db], ["SET", key, value, "EX", "60"], ["GET", key], ["DEL", key]
    )
    if replies != [b"OK", b"OK", value.encode(), b"1"]:
        raise RuntimeError(f"unexpected redis replies: {replies!r}")


def _check_mongo(url: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    with client:
        collection = client["edge_onboard_services_check"]["items"]
        with client.start_session() as session, session.start_transaction():
            collection.insert_one({"_id": "probe", "at": time.time()}, session=session)
            seen_inside = collection.find_one({"_id": "probe"}, session=session)
        seen_after = collection.find_one({"_id": "probe"})
        client.drop_database("edge_onboard_services_check")
    if seen_inside is None or seen_after is None:
        raise RuntimeError(f"mongo transaction round trip failed: {seen_inside=} {seen_after=}")


def main() -> int:
    timings: list[tuple[str, float]] = []

    def timed(label: str, step: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        result = step()
        timings.append((label, time.perf_counter() - started))
        return result

    try:
        with contextlib.ExitStack() as stack:
            redis_url = timed("redis start", lambda: stack.enter_context(redis_server()))
            mongo_url = timed("mongo start", lambda: stack.enter_context(mongo_server()))
            print(f"redis: {redis_url}\nmongo: {mongo_url}")
            timed("redis SET/GET", lambda: _check_redis(redis_url))
            timed("mongo transaction", lambda: _check_mongo(mongo_url))
            stopping = time.perf_counter()
        timings.append(("shutdown", time.perf_counter() - stopping))
    except ServiceUnavailable as exc:
        print(f"service unavailable: {exc}", file=sys.stderr)
        return 1
    for label, seconds in timings:
        print(f"{label:<18} {seconds * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
