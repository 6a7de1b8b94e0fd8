"""The newcomer's path, through the real command: keys, serve, a first link."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.api.test_links_api import LINK_FIELDS, SEED_BODY
from tests.live import create_key, run_cli, serve


def test_serve_with_no_configuration(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    assert key.startswith("sk_live_") and len(key) >= len("sk_live_") + 43
    with serve(tmp_path) as (base, _):
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200 and health.headers["request-id"].startswith("req_")
        ready = httpx.get(f"{base}/readyz")
        assert ready.json() == {"status": "ready", "checks": {"storage": "ok"}}
        created = httpx.post(
            f"{base}/v1/onboarding-links",
            json=SEED_BODY,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert created.status_code == 201, created.text
        link = created.json()["data"]
        assert set(link) == LINK_FIELDS
        assert link["hostedUrl"].startswith(f"{base}/signup/")
    # The embedded default: a SQLite file and its generated key, in the working directory.
    assert (tmp_path / "edge_onboard.db").exists()
    key_file = tmp_path / "edge_onboard.db.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert "EDGE_SECRET_KEY is not set" in log
    assert key not in log and link["webhookSecret"] not in log

    # Records survive a restart, and the secret still decrypts with the kept key.
    with serve(tmp_path) as (base, _):
        again = httpx.get(
            f"{base}/v1/onboarding-links/{link['id']}", headers={"Authorization": f"Bearer {key}"}
        )
        assert again.json()["data"] | {"hostedUrl": None} == link | {"hostedUrl": None}


def test_keys_are_hashed_and_revocable(tmp_path: Path) -> None:
    out = run_cli("keys", "create", "--org", "acme", cwd=tmp_path).stdout
    key = out.strip().splitlines()[-1]
    second = create_key(tmp_path)
    assert second != key
    raw = (tmp_path / "edge_onboard.db").read_bytes()
    assert key.encode() not in raw and key[8:].encode() not in raw
    with serve(tmp_path) as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/v1/onboarding-links", headers=auth).status_code == 200
        # Too short a prefix could match someone else's key.
        assert run_cli("keys", "revoke", "sk_live_", cwd=tmp_path, check=False).returncode == 2
        revoked = run_cli("keys", "revoke", key[:12], cwd=tmp_path)
        assert "revoked" in revoked.stdout
        # The server trusts its in-process copy of a key for at most a second.
        deadline = time.monotonic() + 1.5
        while httpx.get(f"{base}/v1/onboarding-links", headers=auth).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key still works after 1.5 s"
            time.sleep(0.1)
        other = {"Authorization": f"Bearer {second}"}
        assert httpx.get(f"{base}/v1/onboarding-links", headers=other).status_code == 200
        # By full key, and idempotently.
        assert run_cli("keys", "revoke", second, cwd=tmp_path).returncode == 0
        assert "already" in run_cli("keys", "revoke", second, cwd=tmp_path).stdout
    assert run_cli("keys", "revoke", "sk_org_missing00", cwd=tmp_path, check=False).returncode == 1


def test_bad_configuration_fails_with_one_line(tmp_path: Path) -> None:
    cases = {
        "EDGE_PORT": "eighty",
        "EDGE_STORAGE_URL": "postgres://x",
        "EDGE_SECRET_KEY": "short",
        "EDGE_WEBHOOK_ALLOW_PRIVATE": "maybe",
        "EDGE_META_APP_ID": "123",
        "EDGE_PUBLIC_URL": "not a url",
        "EDGE_WORKERS": "2",  # without Redis
        "EDGE_RATE_LIMIT_API": "0",
        "EDGE_SERVER": "uvicorn",
    }
    for name, value in cases.items():
        result = run_cli("serve", cwd=tmp_path, env={name: value}, check=False)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "EDGE_" in lines[0], (name, result.stderr)
    mongo = run_cli(
        "serve", cwd=tmp_path, env={"EDGE_STORAGE_URL": "mongodb://127.0.0.1:1/x"}, check=False
    )
    assert mongo.returncode == 2 and "EDGE_SECRET_KEY" in mongo.stderr


def test_serve_with_several_workers(tmp_path: Path, redis_url: str) -> None:
    storage = {"EDGE_STORAGE_URL": "sqlite:///./shared.db"}  # the default is refused
    key = create_key(tmp_path, env=storage)
    env = {"EDGE_WORKERS": "2", "EDGE_REDIS_URL": redis_url, **storage}
    with serve(tmp_path, env=env) as (base, _):
        auth = {"Authorization": f"Bearer {key}"}
        ids = set()
        for _ in range(6):
            created = httpx.post(f"{base}/v1/onboarding-links", json={"name": "w"}, headers=auth)
            assert created.status_code == 201
            ids.add(created.json()["data"]["id"])
        listing = httpx.get(f"{base}/v1/onboarding-links", headers=auth).json()
        assert listing["pagination"]["total"] == 6 and len(ids) == 6
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"storage": "ok", "redis": "ok"}


def test_the_command_explains_itself(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout.strip() == "edge-onboard 0.1.0"
    top = run_cli("--help", cwd=tmp_path).stdout
    assert "EDGE_STORAGE_URL" in top and "README" in top and "exit status" in top
    for command in (["serve"], ["worker"], ["keys"], ["keys", "create"], ["keys", "revoke"]):
        _, _, rest = run_cli(*command, "--help", cwd=tmp_path).stdout.partition("\n\n")
        description = rest.split("\n\n", 1)[0]
        assert len(description) > 40 and not description.startswith(("positional", "options")), (
            command,
            rest,
        )
    bare = run_cli("keys", cwd=tmp_path, check=False)
    assert bare.returncode == 2 and "keys_command" not in bare.stderr
    assert "edge-onboard keys create --org NAME" in bare.stderr
    nothing = run_cli(cwd=tmp_path, check=False)
    assert nothing.returncode == 2 and "serve" in nothing.stderr


def test_keys_ignore_settings_they_do_not_use(tmp_path: Path) -> None:
    unrelated = {"EDGE_PORT": "eighty", "EDGE_META_APP_ID": "123", "EDGE_WORKERS": "9"}
    key = create_key(tmp_path, env=unrelated)
    assert key.startswith("sk_live_")
    assert run_cli("keys", "revoke", key, cwd=tmp_path, env=unrelated).returncode == 0
    # What they do use is still checked.
    bad = run_cli(
        "keys", "create", "--org", "a", cwd=tmp_path, env={"EDGE_STORAGE_URL": "x://"}, check=False
    )
    assert bad.returncode == 2 and "EDGE_STORAGE_URL" in bad.stderr


def test_test_keys_see_only_test_objects(tmp_path: Path) -> None:
    out = run_cli("keys", "create", "--org", "acme", "--test", cwd=tmp_path).stdout
    test_key = out.strip().splitlines()[-1]
    assert test_key.startswith("sk_test_") and len(test_key) >= len("sk_test_") + 43
    assert "test mode" in out
    live_key = create_key(tmp_path)
    assert live_key.startswith("sk_live_")
    with serve(tmp_path) as (base, _):
        test_auth = {"Authorization": f"Bearer {test_key}"}
        live_auth = {"Authorization": f"Bearer {live_key}"}
        made = httpx.post(f"{base}/v1/onboarding-links", json=SEED_BODY, headers=test_auth)
        assert made.status_code == 201, made.text
        assert made.json()["data"]["livemode"] is False
        link_id = made.json()["data"]["id"]
        assert (
            httpx.get(f"{base}/v1/onboarding-links/{link_id}", headers=live_auth).status_code == 404
        )
        listed = httpx.get(f"{base}/v1/onboarding-links", headers=live_auth).json()["data"]
        assert listed == []
        mine = httpx.get(f"{base}/v1/onboarding-links", headers=test_auth).json()["data"]
        assert [x["id"] for x in mine] == [link_id]
    # Revocable by its prefix like any key.
    assert "revoked" in run_cli("keys", "revoke", test_key[:16], cwd=tmp_path).stdout
