"""Two regions for real (tests/regions_topology.py): a client in the far region reads
without crossing the ocean, writes are replayed to the primary by a double of Fly's
proxy, a signup completes once, deliveries leave from the primary only."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests import services
from tests.live import QuietHandler, threaded_http
from tests.regions_topology import FAR, ONE_WAY, PRIMARY, Topology, owner_of_connection, regions

pytestmark = [pytest.mark.redis, pytest.mark.mongo]

# A request that crossed between the regions took at least one round trip.
ROUND_TRIP = 2 * ONE_WAY
LINK = {"name": "Acme Corp WhatsApp", "redirectUrl": "https://app.example.com/done"}


class Deliveries:
    """The customer's webhook endpoint: what arrived, and from which app process."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.lock = threading.Lock()
        self.pids: dict[str, int] = {}  # app name -> process id, once they run


@pytest.fixture(scope="module")
def deliveries() -> Iterator[tuple[Deliveries, str]]:
    seen = Deliveries()

    class Receiver(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            sender = owner_of_connection(self.client_address[1], seen.pids)
            with seen.lock:
                seen.received.append((orjson.loads(body), sender))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    with threaded_http(Receiver) as url:
        yield seen, url


@pytest.fixture(scope="module")
def topo(deliveries: tuple[Deliveries, str]) -> Iterator[Topology]:
    try:
        with regions() as topology:
            deliveries[0].pids.update({PRIMARY: topology.primary_pid, FAR: topology.far_pid})
            yield topology
    except services.ServiceUnavailable as exc:
        services.unavailable(str(exc))


def _auth(topo: Topology) -> dict[str, str]:
    return {"Authorization": f"Bearer {topo.key}"}


def _timed(client: httpx.Client, method: str, path: str, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kw)
    return response, time.monotonic() - started


def _until_replicated(topo: Topology, path: str, ready: Any) -> None:
    """Wait until the far region's replicas show what the primary wrote (the far app
    asked directly, bypassing the edge, so a miss is not replayed)."""
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(topo.far_app + path, headers=_auth(topo), timeout=10)
        if ready(response):
            return
        assert time.monotonic() < deadline, f"never replicated: {response.status_code}"
        time.sleep(0.1)


def _far_reads(far: httpx.Client, topo: Topology, link: dict[str, Any]) -> dict[str, float]:
    """The hosted page, its assets, the link and a list, from the far region: timings."""
    page, took = _timed(far, "GET", f"/signup/{link['id']}")
    assert page.status_code == 200 and link["name"] in page.text
    timings = {"page": took}
    assets = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))
    assert assets, "the page links its assets"
    for asset in sorted(assets):
        response, timings[asset] = _timed(far, "GET", asset)
        assert response.status_code == 200
    for path in (f"/v1/onboarding-links/{link['id']}", "/v1/onboarding-links?limit=5"):
        response, timings[path] = _timed(far, "GET", path, headers=_auth(topo))
        assert response.status_code == 200, response.text
    listed = far.get("/v1/onboarding-links?limit=5", headers=_auth(topo)).json()["data"]
    assert link["id"] in [item["id"] for item in listed]
    return timings


def test_reads_in_the_far_region_never_cross_the_ocean(topo: Topology) -> None:
    with httpx.Client(base_url=topo.primary_edge, timeout=30) as home:
        link = home.post("/v1/onboarding-links", headers=_auth(topo), json=LINK).json()["data"]
        assert home.get(f"/signup/{link['id']}").status_code == 200  # the first view: opened
    # Until the far replicas have the link opened (before, its page replays the write).
    _until_replicated(topo, f"/signup/{link['id']}", lambda r: r.status_code == 200)
    replays = len(topo.far.replays)
    with httpx.Client(base_url=topo.far_edge, timeout=30) as far:
        # Twice: the first pass opens this process's connections to its replicas; the
        # second, once its own 1-second copies have lapsed, is what every later read costs.
        for _ in range(2):
            time.sleep(1.1)
            timings = _far_reads(far, topo, link)
    assert len(topo.far.replays) == replays, topo.far.replays[replays:]
    # Nothing that crossed could be this fast: each took less than one round trip.
    slow = {
        what: round(seconds * 1000) for what, seconds in timings.items() if seconds >= ROUND_TRIP
    }
    assert not slow, f"crossed regions (ms): {slow}"


def test_a_link_created_far_away_is_readable_at_once(topo: Topology) -> None:
    with httpx.Client(base_url=topo.far_edge, timeout=30) as far:
        before = len(topo.far.replays)
        created = far.post("/v1/onboarding-links", headers=_auth(topo), json=LINK)
        assert created.status_code == 201, created.text
        link_id = created.json()["data"]["id"]
        got = far.get(f"/v1/onboarding-links/{link_id}", headers=_auth(topo))
        assert got.status_code == 200 and got.json()["data"]["id"] == link_id
        listed = far.get("/v1/onboarding-links", headers=_auth(topo)).json()["data"]
        assert listed[0]["id"] == link_id
    states = [(r.method, r.state, r.to) for r in topo.far.replays[before:]]
    assert states[0] == ("POST", "write", PRIMARY)
    assert all(to == PRIMARY for _, _, to in states)


def test_a_signup_completes_once_with_its_callback_in_the_far_region(
    topo: Topology, deliveries: tuple[Deliveries, str]
) -> None:
    seen, receiver = deliveries
    body = {**LINK, "webhookUrl": receiver, "webhookEvents": ["phone_number.connected"]}
    with httpx.Client(base_url=topo.far_edge, timeout=30) as far:
        link = far.post("/v1/onboarding-links", headers=_auth(topo), json=body).json()["data"]
        assert far.get(f"/signup/{link['id']}").status_code == 200
        finished = far.post("/_sandbox/dialog/finish", json={"scenario": "ok"})
        assert finished.status_code == 200, finished.text
        session, data = finished.json(), finished.json()["data"]
        report = {"event": session["event"], "wabaId": data["waba_id"]}
        assert far.post(f"/signup/{link['id']}/session", json=report).status_code == 202
        callback = {
            "code": session["code"],
            "wabaId": data["waba_id"],
            "businessId": data["business_id"],
            "phoneNumberId": data["phone_number_id"],
            "event": session["event"],
        }
        answers: list[httpx.Response] = []

        def post() -> None:
            with httpx.Client(base_url=topo.far_edge, timeout=30) as client:
                answers.append(client.post(f"/signup/{link['id']}/callback", json=callback))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers)[0] == 200, [a.text for a in answers]
        assert sum(a.json()["status"] == "success" for a in answers) >= 1
        got = far.get(f"/v1/onboarding-links/{link['id']}", headers=_auth(topo)).json()["data"]
        assert got["status"] == "completed"
    callbacks = [r for r in topo.far.replays if r.path.endswith("/callback")]
    assert len(callbacks) == 2 and {r.to for r in callbacks} == {PRIMARY}
    deadline = time.monotonic() + 20
    while not any(
        event["data"].get("onboardingLinkId") == link["id"] for event, _ in seen.received
    ):
        assert time.monotonic() < deadline, "phone_number.connected never arrived"
        time.sleep(0.1)
    time.sleep(1.0)  # a second delivery, if any, would come now
    mine = [
        (e, sender)
        for e, sender in seen.received
        if e["data"].get("onboardingLinkId") == link["id"]
    ]
    assert len(mine) == 1 and mine[0][0]["event"] == "phone_number.connected"
    assert {sender for _, sender in seen.received} == {PRIMARY}  # never from the far region


def test_readyz_and_the_start_line_say_region_and_role(topo: Topology) -> None:
    far = httpx.get(f"{topo.far_app}/readyz", timeout=10).json()
    assert far["checks"]["redisReplica"] == "ok"
    region = far["region"]
    assert (region["name"], region["primary"], region["role"]) == (FAR, PRIMARY, "replica")
    assert region["rateLimits"] == "in-process"
    assert region["redisReplicaLagMs"] is not None and region["redisReplicaLagMs"] < 5000
    home = httpx.get(f"{topo.primary_app}/readyz", timeout=10).json()["region"]
    assert home["role"] == "primary" and home["rateLimits"] == "redis"
    logs = "".join(path.read_text() for path in topo.work.rglob("serve-*.log"))
    assert f"region {FAR}, reads from replicas" in logs and f"writes replayed to {PRIMARY}" in logs
    assert f"region {PRIMARY}, primary" in logs
