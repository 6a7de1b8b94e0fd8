"""The built-in fake Meta's state, shared by every process through Redis.

Test-mode links run against the fake on any deployment, and a deployment may run
several processes (``EDGE_WORKERS``) or machines: the popup's "Finish" may reach one
process and the page's callback another, and a later health check or send a third.
Each process keeps the fake's state in memory (``SandboxMeta``); with Redis configured,
a request to the fake first pulls what it concerns from Redis (the WABA and its numbers,
the token's grants, the code) and afterwards pushes back what it may have changed.

Consistency is what a test flow needs, not a database's: a flow's steps follow one
another, so the last writer of a WABA wins. Received media (a test control) stays in the
process that made it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from edge_onboard.core import redis_keys as keys
from edge_onboard.meta.sandbox._state import State, Touched, _Code, _touched

# WABAs kept in a process beyond which those it has not used for LOCAL_IDLE seconds are
# dropped from it (Redis keeps them).
LOCAL_WABAS = 1000
LOCAL_IDLE = 60.0
# Without Redis the process's copy is the only one: past ALONE_WABAS, the WABAs used
# least lately are dropped (test objects, like Redis's copy after SANDBOX_TTL); tokens
# past ALONE_TOKENS go oldest first, and expired codes go.
ALONE_WABAS = 1000
ALONE_TOKENS = 4 * ALONE_WABAS

# Per-process only: never shared (bytes a test attached to a number; the registration
# PIN, which no other process needs and a copy of Redis must not show).
_LOCAL_FIELDS = ("_media", "_pin")


def digest(secret: str) -> str:
    """How a business token or a code is named in Redis (and a WABA lists the tokens
    that grant it): its SHA-256, so a copy of Redis holds no usable token in its key
    names. Both are random (128+ bits), so the hash cannot be reversed."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SharedState:
    """Pull and push the fake's state (``sandbox``'s dictionaries) to Redis."""

    def __init__(self, redis: Any, ttl: int = keys.SANDBOX_TTL) -> None:
        self.redis = redis
        self.ttl = ttl

    async def pull(
        self,
        sandbox: Shared,
        *,
        code: str | None = None,
        tokens: Iterable[str] = (),
        ids: Iterable[str] = (),
        business: str | None = None,
    ) -> Touched:
        """Copy into ``sandbox`` the code (and its token), the tokens' grants and the
        WABAs they grant or ``ids``/``business`` name (a WABA's id, a number's, or a
        business's)."""
        touched = Touched()
        if code:
            reads = self.redis.pipeline(transaction=False)
            reads.get(keys.sandbox("code", digest(code)))
            reads.pttl(keys.sandbox("code", digest(code)))
            raw, ttl_ms = await reads.execute()
            if raw is not None:
                stored = orjson.loads(raw)
                sandbox.adopt_code(code, stored["token"], stored["used"], max(ttl_ms, 0) / 1000)
                touched.codes.add(code)
                tokens = [*tokens, stored["token"]]
        tokens = sorted({t for t in tokens if t})
        ids = sorted({i for i in ids if i})
        names = [keys.sandbox("token", digest(t)) for t in tokens]
        names += [keys.sandbox("phone", i) for i in ids]
        names += [keys.sandbox("business", business)] if business else []
        if not names:
            return touched
        reads = self.redis.pipeline(transaction=False)
        for name in names:
            reads.get(name)
        answers = list(await reads.execute())
        wabas: set[str] = set()
        for token in tokens:
            raw = answers.pop(0)
            if raw is not None:
                granted = set(orjson.loads(raw))
                sandbox.tokens[token] = granted
                wabas |= granted
                touched.tokens.add(token)
        for ident in ids:  # a number's WABA, else the id may be a WABA's own
            wabas.add(_text(answers.pop(0)) or ident)
        if business:
            owner = _text(answers.pop(0))
            if owner:
                wabas.add(owner)
        await self._pull_wabas(sandbox, wabas, touched)
        return touched

    async def _pull_wabas(self, sandbox: Shared, wabas: set[str], touched: Touched) -> None:
        if not wabas:
            return
        ordered = sorted(wabas)
        reads = self.redis.pipeline(transaction=False)
        for waba in ordered:
            reads.get(keys.sandbox("waba", waba))
        for waba, raw in zip(ordered, await reads.execute(), strict=True):
            if raw is not None:
                sandbox.adopt_waba(waba, orjson.loads(raw))
                touched.wabas.add(waba)

    async def push(self, sandbox: Shared, touched: Touched) -> None:
        """Write back the WABAs, tokens and codes ``touched`` names, as ``sandbox`` has
        them now."""
        if not (touched.wabas or touched.tokens or touched.codes):
            return
        writes = self.redis.pipeline(transaction=False)
        for waba in sorted(touched.wabas):
            world = sandbox.waba_state(waba)
            if world is None:
                continue
            writes.set(keys.sandbox("waba", waba), orjson.dumps(world), ex=self.ttl)
            for phone in world["phones"]:
                writes.set(keys.sandbox("phone", phone["id"]), waba, ex=self.ttl)
            if world["business"]:
                writes.set(keys.sandbox("business", world["business"]), waba, ex=self.ttl)
        for token in sorted(touched.tokens):
            granted = sandbox.tokens.get(token)
            if granted is not None:
                name = keys.sandbox("token", digest(token))
                writes.set(name, orjson.dumps(sorted(granted)), ex=self.ttl)
        for code in sorted(touched.codes):
            held = sandbox.code_state(code)
            if held is not None:
                token, used, left = held
                if left > 0:
                    raw = orjson.dumps({"token": token, "used": used})
                    name = keys.sandbox("code", digest(code))
                    writes.set(name, raw, px=max(1, int(left * 1000)))
                else:
                    writes.delete(keys.sandbox("code", digest(code)))
        await writes.execute()

    async def ungrant(self, token_digests: Iterable[str], waba_id: str) -> None:
        """Take ``waba_id`` from the grants of the tokens named (by digest) in Redis:
        those other processes made, which this one may never have seen."""
        names = [keys.sandbox("token", d) for d in sorted(set(token_digests))]
        if not names:
            return
        reads = self.redis.pipeline(transaction=False)
        for name in names:
            reads.get(name)
        writes = self.redis.pipeline(transaction=False)
        for name, raw in zip(names, await reads.execute(), strict=True):
            if raw is not None:
                granted = sorted(set(orjson.loads(raw)) - {waba_id})
                writes.set(name, orjson.dumps(granted), ex=self.ttl)
        await writes.execute()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def local_fields(phone: dict[str, Any]) -> dict[str, Any]:
    """A number's record as shared: without what stays in this process."""
    return {k: v for k, v in phone.items() if k not in _LOCAL_FIELDS}


class Shared(State):
    """The fake's state kept in Redis too, for every process of the deployment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Shared with other processes (share()): None until then.
        self.shared: SharedState | None = None

    def share(self, redis: Any) -> None:
        """Keep the state in ``redis`` too, for every process of the deployment."""
        self.shared = SharedState(redis)

    @contextlib.asynccontextmanager
    async def _synced(
        self,
        *,
        code: str | None = None,
        tokens: Iterable[str] = (),
        ids: Iterable[str] = (),
        business: str | None = None,
    ) -> AsyncIterator[Touched]:
        """Around one request to the fake: pull what it concerns first, push what it
        created or changed after. Without sharing, only collects."""
        if self.shared is None:
            touched = Touched()
        else:
            touched = await self.shared.pull(
                self, code=code, tokens=tokens, ids=ids, business=business
            )
        reset = _touched.set(touched)
        try:
            yield touched
        finally:
            _touched.reset(reset)
        now = self.clock()
        for waba in touched.wabas:
            self._seen[waba] = now
        if self.shared is not None:
            await self.shared.push(self, touched)
        self._trim(now)

    def adopt_code(self, code: str, token: str, used: bool, ttl: float) -> None:
        self.codes[code] = _Code(token=token, expires_at=self.clock() + ttl, used=used)

    def code_state(self, code: str) -> tuple[str, bool, float] | None:
        """A code's token, whether it was used and the seconds it has left."""
        held = self.codes.get(code)
        if held is None:
            return None
        return held.token, held.used, held.expires_at - self.clock()

    def adopt_waba(self, waba_id: str, state: dict[str, Any]) -> None:
        """Take a WABA as another process left it (this process's own fields kept)."""
        for phone in state["phones"]:
            held = self.phones.get(phone["id"], {})
            kept = {k: held[k] for k in _LOCAL_FIELDS if held.get(k)}
            self.phones[phone["id"]] = {**phone, **kept}
        self.waba_phones[waba_id] = [phone["id"] for phone in state["phones"]]
        self.subscriptions[waba_id] = set(state["subscriptions"])
        if state["fields"] is not None:
            self.subscribed_fields[waba_id] = state["fields"]
        if state["business"]:
            self.businesses[state["business"]] = waba_id
        self._waba_tokens.setdefault(waba_id, set()).update(state["tokens"])

    def waba_state(self, waba_id: str) -> dict[str, Any] | None:
        """A WABA with its numbers, as shared; None for one this fake never made."""
        if waba_id not in self.waba_phones:
            return None
        granting = {digest(t) for t, granted in self.tokens.items() if waba_id in granted}
        return {
            "phones": [local_fields(self.phones[p]) for p in self.waba_phones[waba_id]],
            "subscriptions": sorted(self.subscriptions.get(waba_id, ())),
            "fields": self.subscribed_fields.get(waba_id),
            "business": next((b for b, w in self.businesses.items() if w == waba_id), None),
            "tokens": sorted(self._waba_tokens.get(waba_id, set()) | granting),
        }

    def _trim(self, now: float) -> None:
        """Bound this process's copy. Shared, Redis holds the state, so WABAs idle here
        for LOCAL_IDLE seconds go once more than LOCAL_WABAS are kept; alone, those used
        least lately go past ALONE_WABAS."""
        if self.shared is not None:
            if len(self.waba_phones) <= LOCAL_WABAS:
                return
            self._forget(
                {w for w in self.waba_phones if now - self._seen.get(w, 0.0) > LOCAL_IDLE}, now
            )
            return
        if len(self.waba_phones) > ALONE_WABAS:  # down to 90 %: a sort per hundred signups
            by_use = sorted(self.waba_phones, key=lambda w: self._seen.get(w, 0.0))
            self._forget(set(by_use[: len(by_use) - ALONE_WABAS * 9 // 10]), now)
        elif len(self.tokens) > ALONE_TOKENS or len(self.codes) > ALONE_TOKENS:
            self._forget(set(), now)

    def _forget(self, wabas: set[str], now: float) -> None:
        """Drop ``wabas`` with their numbers, the tokens left granting nothing (and the
        oldest past ALONE_TOKENS) and expired codes."""
        for waba in wabas:
            for phone in self.waba_phones.pop(waba, ()):
                self.phones.pop(phone, None)
            self.subscriptions.pop(waba, None)
            self.subscribed_fields.pop(waba, None)
            self._waba_tokens.pop(waba, None)
            self._seen.pop(waba, None)
        if wabas:
            self.businesses = {b: w for b, w in self.businesses.items() if w not in wabas}
        tokens = [(t, g) for t, g in self.tokens.items() if not g or g - wabas]
        self.tokens = dict(tokens[-ALONE_TOKENS:] if self.shared is None else tokens)
        self.codes = {c: held for c, held in self.codes.items() if held.expires_at > now}
