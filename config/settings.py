"""Typed settings, read once from the environment at start-up.

Every bad value fails with a ``ConfigError`` whose message is one line naming the
variable, so an operator sees exactly what to fix.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

DEFAULT_STORAGE_URL = "sqlite:///./edge_onboard.db"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v25.0"
DEFAULT_SDK_URL = "https://connect.facebook.net/en_US/sdk.js"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Secret:
    """A string that never shows itself in ``repr`` or ``str`` (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    storage_url: str = DEFAULT_STORAGE_URL
    redis_url: Secret | None = None
    secret_key: Secret | None = None
    meta_app_id: str | None = None
    meta_app_secret: Secret | None = None
    meta_config_id: str | None = None
    meta_graph_url: str = DEFAULT_GRAPH_URL
    meta_graph_version: str = DEFAULT_GRAPH_VERSION
    meta_sdk_url: str = DEFAULT_SDK_URL
    meta_verify_token: Secret | None = None
    # The partner's system-user token: recovers signups whose page never reported back.
    meta_system_user_token: Secret | None = None
    # Seconds after a session report before Meta's account_update may recover the link.
    recovery_grace: float = 120.0
    # Seconds between reconciliation passes (recoveries, expiry events) in serve/worker.
    reconcile_interval: float = 30.0
    # Days events are kept for GET /v1/events and recoveries (EDGE_EVENT_RETENTION_DAYS).
    event_retention_days: int = 30
    webhook_allow_private: bool = False
    sandbox: bool = False
    # `serve` also delivers webhooks unless EDGE_INPROCESS_DELIVERY=0 (separate workers).
    inprocess_delivery: bool = True
    # Seconds before each retry; only for tests and demos (EDGE_DELIVERY_SCHEDULE).
    delivery_schedule: tuple[float, ...] | None = None
    # Seconds a worker holds a delivery before others may take it (EDGE_DELIVERY_LEASE).
    delivery_lease: float = 60.0
    # Requests per second (bursts twice that): per API key, and per client on /signup.
    rate_limit_api: float = 50.0
    rate_limit_public: float = 10.0
    # Requests per second per client address on Meta's webhook endpoints (/webhook/*).
    rate_limit_inbound: float = 500.0
    # worker processes for `serve` (EDGE_WORKERS), each with its own listening socket.
    workers: int = 1
    # The HTTP server `serve` runs the app on (EDGE_SERVER, `serve --server`).
    server: str = "hypercorn"
    # EDGE_LOG_LEVEL (debug, info, warning, error) and EDGE_LOG_FORMAT (text, json).
    log_level: str = "info"
    log_format: str = "text"
    # Regions (Fly.io's FLY_REGION/PRIMARY_REGION, else EDGE_REGION/EDGE_PRIMARY_REGION):
    # outside the primary, writes are replayed there and reads come from replicas.
    region: str | None = None
    primary_region: str | None = None
    # A read-only Redis replica of EDGE_REDIS_URL near this region (EDGE_REDIS_REPLICA_URL).
    redis_replica_url: Secret | None = None
    # MongoDB's maxStalenessSeconds for reads outside the primary (EDGE_REPLICA_MAX_STALENESS).
    replica_max_staleness: int = 90
    # Seconds a client's reads go to the primary after it wrote (EDGE_REPLAY_WINDOW).
    replay_window: float = 5.0

    @property
    def in_primary_region(self) -> bool:
        """True unless a region and a different primary region are both known."""
        return self.region is None or self.primary_region in (None, self.region)

    @property
    def meta_configured(self) -> bool:
        return bool(self.meta_app_id and self.meta_app_secret and self.meta_config_id)

    @classmethod
    def for_keys(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Only what ``keys create``/``revoke`` use (storage, and Redis to tell servers
        of a revocation): a bad setting they never read does not stop them."""
        get = _getter(os.environ if environ is None else environ)
        storage_url, _ = _storage_url(get)
        redis_url = _redis_url(get)
        log_level, log_format = _logging(get)
        return cls(
            storage_url=storage_url,
            redis_url=Secret(redis_url) if redis_url else None,
            log_level=log_level,
            log_format=log_format,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        sandbox: bool | None = None,
        server: str | None = None,
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); CLI flags win."""
        get = _getter(os.environ if environ is None else environ)

        host = host or get("EDGE_HOST") or "127.0.0.1"
        _check_host(host)
        if port is None:
            port = _int(get("EDGE_PORT"), "EDGE_PORT", default=8080, low=0, high=65535)
        elif not 0 <= port <= 65535:
            raise ConfigError(f"--port: {port} is not a TCP port (0-65535)")
        # On Fly.io the app's own name gives its public address (a fixed name in fly.toml
        # could belong to another app); a custom domain is set with EDGE_PUBLIC_URL.
        fly_app = get("FLY_APP_NAME")
        public_url = (
            get("EDGE_PUBLIC_URL")
            or (f"https://{fly_app}.fly.dev" if fly_app else None)
            or f"http://{_url_host(host)}:{port}"
        )
        public_url = _http_url(public_url, "EDGE_PUBLIC_URL").rstrip("/")

        storage_url, scheme = _storage_url(get)
        redis_url = _redis_url(get)

        secret_key = get("EDGE_SECRET_KEY")
        if secret_key is not None and len(secret_key.split(",")[0].strip()) < 32:
            raise ConfigError("EDGE_SECRET_KEY: must be at least 32 characters of random data")
        if secret_key is None and scheme.startswith("mongodb"):
            raise ConfigError(
                "EDGE_SECRET_KEY: required with MongoDB storage "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )

        app_id, app_secret, config_id = (
            get("EDGE_META_APP_ID"),
            get("EDGE_META_APP_SECRET"),
            get("EDGE_META_CONFIG_ID"),
        )
        given = [
            n
            for n, v in (
                ("EDGE_META_APP_ID", app_id),
                ("EDGE_META_APP_SECRET", app_secret),
                ("EDGE_META_CONFIG_ID", config_id),
            )
            if v
        ]
        if given and len(given) != 3:
            missing = sorted(
                {"EDGE_META_APP_ID", "EDGE_META_APP_SECRET", "EDGE_META_CONFIG_ID"} - set(given)
            )
            raise ConfigError(f"{missing[0]}: required when {given[0]} is set")

        graph_version = get("EDGE_META_GRAPH_VERSION") or DEFAULT_GRAPH_VERSION
        if not re.fullmatch(r"v\d+\.\d+", graph_version):
            raise ConfigError("EDGE_META_GRAPH_VERSION: must look like v25.0")

        sandbox_on = _bool(get("EDGE_SANDBOX"), "EDGE_SANDBOX") if sandbox is None else sandbox
        inprocess = get("EDGE_INPROCESS_DELIVERY")
        schedule = _schedule(get("EDGE_DELIVERY_SCHEDULE"))
        verify_token = get("EDGE_META_VERIFY_TOKEN")
        system_token = get("EDGE_META_SYSTEM_USER_TOKEN")

        workers = _int(get("EDGE_WORKERS"), "EDGE_WORKERS", default=1, low=1, high=64)
        if workers > 1 and redis_url is None:
            raise ConfigError(
                "EDGE_WORKERS: more than one worker needs EDGE_REDIS_URL "
                "(their delivery queue and rate limits must be shared)"
            )
        if workers > 1 and (sandbox_on or scheme == "memory"):
            raise ConfigError(
                "EDGE_WORKERS: the sandbox and memory:// storage live in one process; use 1"
            )

        if get("EDGE_STORAGE_URL") is None and (fly_app or workers > 1):
            where = "on Fly.io" if fly_app else "with EDGE_WORKERS > 1"
            raise ConfigError(
                f"EDGE_STORAGE_URL: must be set {where}: the default SQLite file lives on one "
                "machine's own disk, which a deployment replaces or does not share, so its "
                "data would be lost (use mongodb://…, or sqlite:/// on a mounted volume)"
            )

        log_level, log_format = _logging(get)
        region, primary_region, replica_url = _regions(get)
        return cls(
            region=region,
            primary_region=primary_region,
            redis_replica_url=Secret(replica_url) if replica_url else None,
            replica_max_staleness=_int(
                get("EDGE_REPLICA_MAX_STALENESS"),
                "EDGE_REPLICA_MAX_STALENESS",
                default=90,
                low=90,  # MongoDB's own floor for maxStalenessSeconds
                high=86_400,
            ),
            replay_window=float(
                _int(get("EDGE_REPLAY_WINDOW"), "EDGE_REPLAY_WINDOW", default=5, low=0, high=600)
            ),
            log_level=log_level,
            log_format=log_format,
            host=host,
            workers=workers,
            server=_server(server or get("EDGE_SERVER")),
            port=port,
            public_url=public_url,
            storage_url=storage_url,
            redis_url=Secret(redis_url) if redis_url else None,
            secret_key=Secret(secret_key) if secret_key else None,
            meta_app_id=app_id,
            meta_app_secret=Secret(app_secret) if app_secret else None,
            meta_config_id=config_id,
            meta_graph_url=_http_url(
                get("EDGE_META_GRAPH_URL") or DEFAULT_GRAPH_URL, "EDGE_META_GRAPH_URL"
            ).rstrip("/"),
            meta_graph_version=graph_version,
            meta_sdk_url=_http_url(
                get("EDGE_META_SDK_URL") or DEFAULT_SDK_URL, "EDGE_META_SDK_URL"
            ),
            meta_verify_token=Secret(verify_token) if verify_token else None,
            meta_system_user_token=Secret(system_token) if system_token else None,
            recovery_grace=float(
                _int(
                    get("EDGE_RECOVERY_GRACE_SECONDS"),
                    "EDGE_RECOVERY_GRACE_SECONDS",
                    default=120,
                    low=0,
                    high=86_400,
                )
            ),
            reconcile_interval=float(
                _int(
                    get("EDGE_RECONCILE_INTERVAL"),
                    "EDGE_RECONCILE_INTERVAL",
                    default=30,
                    low=1,
                    high=3600,
                )
            ),
            event_retention_days=_int(
                get("EDGE_EVENT_RETENTION_DAYS"),
                "EDGE_EVENT_RETENTION_DAYS",
                default=30,
                low=1,
                high=3650,
            ),
            webhook_allow_private=_bool(
                get("EDGE_WEBHOOK_ALLOW_PRIVATE"), "EDGE_WEBHOOK_ALLOW_PRIVATE"
            ),
            sandbox=sandbox_on,
            inprocess_delivery=True
            if inprocess is None
            else _bool(inprocess, "EDGE_INPROCESS_DELIVERY"),
            delivery_schedule=schedule,
            rate_limit_api=float(
                _int(
                    get("EDGE_RATE_LIMIT_API"),
                    "EDGE_RATE_LIMIT_API",
                    default=50,
                    low=1,
                    high=100_000,
                )
            ),
            rate_limit_public=float(
                _int(
                    get("EDGE_RATE_LIMIT_PUBLIC"),
                    "EDGE_RATE_LIMIT_PUBLIC",
                    default=10,
                    low=1,
                    high=100_000,
                )
            ),
            rate_limit_inbound=float(
                _int(
                    get("EDGE_RATE_LIMIT_INBOUND"),
                    "EDGE_RATE_LIMIT_INBOUND",
                    default=500,
                    low=1,
                    high=100_000,
                )
            ),
            delivery_lease=float(
                _int(
                    get("EDGE_DELIVERY_LEASE"), "EDGE_DELIVERY_LEASE", default=60, low=1, high=3600
                )
            ),
        )


def _logging(get: Callable[[str], str | None]) -> tuple[str, str]:
    level = (get("EDGE_LOG_LEVEL") or "info").lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("EDGE_LOG_LEVEL: use debug, info, warning or error")
    fmt = (get("EDGE_LOG_FORMAT") or "text").lower()
    if fmt not in {"text", "json"}:
        raise ConfigError("EDGE_LOG_FORMAT: use text or json")
    return level, fmt


def _getter(env: Mapping[str, str]) -> Callable[[str], str | None]:
    """A variable's value, stripped; None when unset or blank."""

    def get(name: str) -> str | None:
        value = env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    return get


def _storage_url(get: Callable[[str], str | None]) -> tuple[str, str]:
    storage_url = get("EDGE_STORAGE_URL") or DEFAULT_STORAGE_URL
    scheme = storage_url.split(":", 1)[0].lower()
    if scheme not in {"sqlite", "memory", "mongodb", "mongodb+srv"}:
        raise ConfigError(
            f"EDGE_STORAGE_URL: unknown scheme {scheme!r} "
            "(use sqlite:///path, mongodb://host/db or memory://)"
        )
    _check_storage_url(storage_url, scheme)
    return storage_url, scheme


def _regions(get: Callable[[str], str | None]) -> tuple[str | None, str | None, str | None]:
    """This process's region, the primary region and the Redis replica to read from.

    Fly.io sets FLY_REGION on every machine and PRIMARY_REGION from fly.toml's
    ``primary_region``; EDGE_REGION / EDGE_PRIMARY_REGION name them elsewhere (and win)."""
    region = (get("EDGE_REGION") or get("FLY_REGION") or "").lower() or None
    primary = (get("EDGE_PRIMARY_REGION") or get("PRIMARY_REGION") or "").lower() or None
    for name, value in (("EDGE_REGION", region), ("EDGE_PRIMARY_REGION", primary)):
        if value is not None and not re.fullmatch(r"[a-z0-9]{2,12}", value):
            raise ConfigError(f"{name}: {value!r} is not a region code such as iad or syd")
    replica = get("EDGE_REDIS_REPLICA_URL")
    if replica is not None and "{region}" in replica:
        # One secret for every region (Fly's secrets are per app): each fills in its own.
        if region is None:
            raise ConfigError("EDGE_REDIS_REPLICA_URL: {region} needs FLY_REGION or EDGE_REGION")
        replica = replica.replace("{region}", region)
    if replica is not None:
        if urlsplit(replica).scheme not in {"redis", "rediss", "unix"}:
            raise ConfigError(
                "EDGE_REDIS_REPLICA_URL: must start with redis://, rediss:// or unix:// "
                "(one replica server of EDGE_REDIS_URL)"
            )
        if get("EDGE_REDIS_URL") is None:
            raise ConfigError("EDGE_REDIS_REPLICA_URL: needs EDGE_REDIS_URL (its primary)")
    return region, primary, replica


def _redis_url(get: Callable[[str], str | None]) -> str | None:
    redis_url = get("EDGE_REDIS_URL")
    if redis_url is None:
        return None
    parts = urlsplit(redis_url)
    if parts.scheme not in {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}:
        raise ConfigError(
            "EDGE_REDIS_URL: must start with redis://, rediss://, unix:// or, for a Redis "
            "Cluster, redis+cluster:// or rediss+cluster://"
        )
    if parts.scheme.endswith("+cluster") and parts.path not in {"", "/", "/0"}:
        raise ConfigError("EDGE_REDIS_URL: a Redis Cluster has only database 0")
    return redis_url


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}: expected 1 or 0, got {value!r}")


def _check_storage_url(url: str, scheme: str) -> None:
    name = "EDGE_STORAGE_URL"
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or not url[len("sqlite:///") :]:
            raise ConfigError(f"{name}: use sqlite:///relative/path or sqlite:////absolute/path")
    elif scheme.startswith("mongodb"):
        from pymongo.errors import ConfigurationError, InvalidURI
        from pymongo.uri_parser import parse_uri

        try:
            # No DNS look-up here (mongodb+srv resolves when the client connects).
            parse_uri(url, connect_timeout=None) if scheme == "mongodb" else None
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise ConfigError(f"{name}: not a valid MongoDB URL ({exc})") from None


def _schedule(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        delays = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ConfigError(
            f"EDGE_DELIVERY_SCHEDULE: expected comma-separated seconds, got {value!r}"
        ) from None
    if not delays or any(d < 0 or d > 7 * 86400 for d in delays):
        raise ConfigError("EDGE_DELIVERY_SCHEDULE: delays must be 0 to 604800 seconds")
    return delays


def _int(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: {number} is outside {low}-{high}")
    return number


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{name}: expected an absolute http(s) URL, got {value!r}")
    return value


SERVERS = ("hypercorn", "granian")


def _server(value: str | None) -> str:
    server = (value or SERVERS[0]).strip().lower()
    if server not in SERVERS:
        raise ConfigError(f"EDGE_SERVER: use {' or '.join(SERVERS)}, not {value!r}")
    return server


def _check_host(host: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", host):
        raise ConfigError(f"EDGE_HOST: {host!r} is not a host name or address")


def _url_host(host: str) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host
