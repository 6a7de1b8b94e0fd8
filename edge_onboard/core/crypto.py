"""Encryption at rest for secrets we must read back (Meta tokens, PINs, webhook secrets).

AES-256-GCM with a key derived (HKDF-SHA256) from ``EDGE_SECRET_KEY``. The variable may
hold several comma-separated keys: the first encrypts, all decrypt, so keys rotate
without downtime. Ciphertexts name the key that made them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("edge_onboard")

_PREFIX = "v1"


class DecryptionError(Exception):
    """The ciphertext is corrupt or was made with a key we no longer hold."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in secret_key.split(",") if k.strip()]
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        self._primary = ""
        self._mac_key = b""
        self._mac_keys: list[bytes] = []
        for index, material in enumerate(keys):
            derived = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"edge-onboard/at-rest/v1"
            ).derive(material.encode())
            key_id = hashlib.sha256(derived).hexdigest()[:8]
            self._ciphers[key_id] = AESGCM(derived)
            self._mac_keys.append(
                HKDF(
                    algorithm=hashes.SHA256(), length=32, salt=None, info=b"edge-onboard/mac/v1"
                ).derive(material.encode())
            )
            if index == 0:
                self._primary = key_id
                self._mac_key = self._mac_keys[0]

    def token(self, purpose: str) -> str:
        """A stable secret for ``purpose`` (e.g. a phone's webhook verify token), derived
        from the primary key: nothing to store, and only we can compute it."""
        digest = hmac.new(self._mac_key, purpose.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def digests(self, purpose: str, data: bytes) -> list[str]:
        """``data``'s keyed digest (HMAC-SHA256 under each key's MAC key, the primary's
        first) for ``purpose``: what a stored digest may match, so a key rotation keeps
        digests made before it comparable. Without the key, a copy of the digests
        cannot be brute-forced back to short secrets the data held."""
        tag = purpose.encode() + b"\x00"
        return [hmac.new(key, tag + data, hashlib.sha256).hexdigest() for key in self._mac_keys]

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt ``plaintext``; ``context`` (e.g. a record id) binds it to its owner."""
        nonce = os.urandom(12)
        sealed = self._ciphers[self._primary].encrypt(nonce, plaintext.encode(), context.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_PREFIX}.{self._primary}.{token}"

    def decrypt(self, ciphertext: str, *, context: str = "") -> str:
        try:
            version, key_id, token = ciphertext.split(".", 2)
        except ValueError:
            raise DecryptionError("not an edge-onboard ciphertext") from None
        cipher = self._ciphers.get(key_id)
        if version != _PREFIX or cipher is None:
            raise DecryptionError(f"no key {key_id!r} among EDGE_SECRET_KEY's keys")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            return cipher.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None


def load_or_create_key_file(path: Path) -> str:
    """The embedded default's key: generated once, kept beside the SQLite file (0600).

    Written whole to a file of its own, then hard-linked into place: several processes
    starting at once (``EDGE_WORKERS``) all read the one key that landed first, never a
    file another is still writing."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return path.read_text().strip()  # another process's key landed first
    finally:
        os.unlink(draft)
    log.warning(
        "EDGE_SECRET_KEY is not set: generated one in %s. Back it up with the database, "
        "or set EDGE_SECRET_KEY; without it, stored secrets cannot be read.",
        path,
    )
    return key
