"""Settings that depend on where the service runs (config/settings.py)."""

from __future__ import annotations

import pytest

from edge_onboard.config import ConfigError, Settings

MONGO = {"EDGE_STORAGE_URL": "mongodb://db.internal/edge", "EDGE_SECRET_KEY": "k" * 40}


def test_on_fly_the_public_url_is_the_apps_own() -> None:
    settings = Settings.from_env({"FLY_APP_NAME": "acme-onboard", **MONGO})
    assert settings.public_url == "https://acme-onboard.fly.dev"
    custom = {"FLY_APP_NAME": "acme-onboard", "EDGE_PUBLIC_URL": "https://onboard.acme.com/"}
    assert Settings.from_env({**custom, **MONGO}).public_url == "https://onboard.acme.com"
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({"FLY_APP_NAME": "acme-onboard"}, "on Fly.io"),
        ({"EDGE_WORKERS": "2", "EDGE_REDIS_URL": "redis://r:6379/0"}, "EDGE_WORKERS > 1"),
    ],
)
def test_a_deployment_refuses_the_default_sqlite_file(env: dict[str, str], where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    assert message.startswith("EDGE_STORAGE_URL: must be set") and where in message
    assert "\n" not in message
    assert Settings.from_env({**env, **MONGO}).storage_url == MONGO["EDGE_STORAGE_URL"]
    # SQLite chosen on purpose (a mounted volume) is the operator's call.
    volume = {**env, "EDGE_STORAGE_URL": "sqlite:////data/edge.db"}
    assert Settings.from_env(volume).storage_url == "sqlite:////data/edge.db"


def test_event_retention_days() -> None:
    env = {"EDGE_STORAGE_URL": "memory://"}
    assert Settings.from_env(env).event_retention_days == 30
    assert Settings.from_env({**env, "EDGE_EVENT_RETENTION_DAYS": "7"}).event_retention_days == 7
    for bad in ("0", "thirty", "4000"):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env({**env, "EDGE_EVENT_RETENTION_DAYS": bad})
        assert str(raised.value).startswith("EDGE_EVENT_RETENTION_DAYS: ")


def test_several_redis_hosts_are_cluster_seeds() -> None:
    env = {"EDGE_STORAGE_URL": "memory://"}
    seeds = "redis+cluster://u:p@a:7000,b:7000,[::1]:7001"
    assert Settings.from_env({**env, "EDGE_REDIS_URL": seeds}).redis_url is not None
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**env, "EDGE_REDIS_URL": "redis://a:6379,b:6379/0"})
    assert str(raised.value).startswith("EDGE_REDIS_URL: several hosts")
