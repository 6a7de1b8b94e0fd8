from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from edge_onboard.api.auth import create_key
from edge_onboard.app import create_app
from edge_onboard.config import Settings
from edge_onboard.meta.sandbox import SandboxMeta
from edge_onboard.onboarding.links import LinkService
from edge_onboard.services import Services
from edge_onboard.storage import Storage, utc_ms
from edge_onboard.storage.memory import MemoryStorage
from edge_onboard.storage.mongo import MongoStorage
from edge_onboard.storage.sqlite import SQLiteStorage
from tests import services

BACKENDS = ["memory", "sqlite", "mongo"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _service(start: Callable[[], contextlib.AbstractContextManager[str]]) -> Iterator[str]:
    try:
        with start() as url:
            yield url
    except services.ServiceUnavailable as exc:
        services.unavailable(f"test service missing: {exc}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from _service(services.redis_server)


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    yield from _service(services.mongo_server)


@contextlib.contextmanager
def _cluster_url() -> Iterator[str]:
    with services.redis_cluster() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster (3 masters, 3 replicas) the session's tests share; a test that
    kills nodes starts its own (``services.redis_cluster(private=True)``)."""
    yield from _service(_cluster_url)


class FakeClock:
    """A clock tests move by hand; starts at a fixed, millisecond-aligned moment."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = utc_ms(start or datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = utc_ms(self.now + timedelta(**delta))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextlib.asynccontextmanager
async def open_storage(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Storage]:
    store: Storage
    if kind == "memory":
        store = MemoryStorage()
    elif kind == "sqlite":
        store = SQLiteStorage(tmp_path / "edge.db")
    else:
        url = request.getfixturevalue("mongodb_url")
        store = MongoStorage(url, database=f"edge_test_{uuid.uuid4().hex[:12]}")
    await store.open()
    try:
        yield store
    finally:
        if isinstance(store, MongoStorage):
            await store.client.drop_database(store.db.name)
        await store.close()


@pytest.fixture(params=BACKENDS)
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Storage]:
    async with open_storage(request.param, tmp_path, request) as store:
        yield store


def make_settings(**overrides: Any) -> Settings:
    env = {"EDGE_PUBLIC_URL": "https://onboard.test", "EDGE_STORAGE_URL": "memory://"}
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


class AppClient(httpx.AsyncClient):
    """An httpx client on the app in process, with the app's running services."""

    services: Services
    # The app itself, for a client of its own (another address, say).
    asgi_app: Starlette


class Api:
    """An httpx client on the app (lifespan running) with a key for one organisation."""

    def __init__(self, client: AppClient, storage: Storage, clock: FakeClock) -> None:
        self.client = client
        self.storage = storage
        self.clock = clock

    @property
    def links(self) -> LinkService:
        """The app's LinkService: changes made through it keep the hot layer right."""
        return self.client.services.links

    async def key(self, org: str = "acme", *, livemode: bool = True) -> dict[str, str]:
        _, _, plaintext = await create_key(self.storage, org, self.clock(), livemode=livemode)
        return {"Authorization": f"Bearer {plaintext}"}


@contextlib.asynccontextmanager
async def running_app(
    store: Storage, clock: FakeClock, settings: Settings | None = None, **options: Any
) -> AsyncIterator[AppClient]:
    options.setdefault("deliver", False)  # tests drive delivery themselves (engine.drain)
    app = create_app(settings or make_settings(), storage=store, clock=clock, **options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AppClient(transport=transport, base_url="https://onboard.test") as client:
            client.services = app.state.services
            client.asgi_app = app
            yield client


@pytest.fixture
async def api(storage: Storage, clock: FakeClock) -> AsyncIterator[Api]:
    async with running_app(storage, clock) as client:
        yield Api(client, storage, clock)


@pytest.fixture(scope="module")
def meta_over_http() -> Iterator[tuple[SandboxMeta, str]]:
    """The sandbox's fake Meta served on 127.0.0.1 (its Graph at ``{url}/_sandbox/graph``):
    the service's real Graph client calls it over HTTP."""
    from starlette.applications import Starlette

    from tests.live import serving

    fake = SandboxMeta()
    with serving(Starlette(routes=fake.routes())) as url:
        yield fake, url


def real_meta_settings(url: str, **env: str) -> Settings:
    """Settings for a service whose Meta app is the fake at ``url`` (not the sandbox)."""
    from edge_onboard.meta.sandbox import APP_ID, APP_SECRET, CONFIG_ID

    return make_settings(
        EDGE_META_APP_ID=APP_ID,
        EDGE_META_APP_SECRET=APP_SECRET,
        EDGE_META_CONFIG_ID=CONFIG_ID,
        EDGE_META_GRAPH_URL=f"{url}/_sandbox/graph",
        EDGE_WEBHOOK_ALLOW_PRIVATE="1",
        **env,
    )
