"""Model artifacts are data, signed: an HMAC over their digests, checked before loading.

At registration Conveyor computes a digest of the version's model folder (every file:
``MLmodel``, the skops or pickle file, the shipped code, the requirements) and of its
ONNX graph, and signs them together with the run id and the serialisation format::

    conveyor.model_digest   sha256 over the folder's sorted (path, sha256) list
    conveyor.onnx_digest    sha256 of onnx/model.onnx ("" when there is none)
    conveyor.signature      v1:<key id>:<HMAC-SHA256 of the claims>

Before a version is deserialised (``serve``, ``monitor``, ``predict``, the promotion
gate), the signature is checked against the keys in force, then the downloaded files
against the signed digests. An unsigned version, a wrong signature or a changed file is
refused with :class:`ModelIntegrityError`, before a byte of the model is interpreted.

Keys: ``CONVEYOR_SIGNING_KEY`` (at least 32 characters) signs and verifies;
``CONVEYOR_SIGNING_KEYS_PREVIOUS`` (comma-separated) only verify, for key rotation. An
embedded SQLite store without either gets a random key in ``signing.key`` beside its
database file (mode 0600), created at its first registration.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from conveyor.errors import ConfigError, ModelIntegrityError

__all__ = [
    "KEY_ENV",
    "KEY_FILE",
    "MIN_KEY_CHARS",
    "MODEL_DIGEST_TAG",
    "ONNX_DIGEST_TAG",
    "PREVIOUS_KEYS_ENV",
    "SIGNATURE_TAG",
    "ModelClaims",
    "SigningKey",
    "check_digest",
    "file_digest",
    "key_file",
    "require_signing_key",
    "signing_keys",
    "tree_digest",
    "verify_claims",
]

logger = logging.getLogger(__name__)

KEY_ENV = "CONVEYOR_SIGNING_KEY"
PREVIOUS_KEYS_ENV = "CONVEYOR_SIGNING_KEYS_PREVIOUS"
KEY_FILE = "signing.key"
MIN_KEY_CHARS = 32
SIGNATURE_TAG = "conveyor.signature"
MODEL_DIGEST_TAG = "conveyor.model_digest"
ONNX_DIGEST_TAG = "conveyor.onnx_digest"
SERIALIZATION_TAG = "conveyor.serialization"
RUN_TAG = "conveyor.run_id"
_SCHEME = "v1"
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of one file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(folder: Path) -> str:
    """sha256 over the sorted ``relative/path NUL sha256`` lines of every file in a folder
    (compiled ``__pycache__`` files included: Python would run them instead of the source).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / "a.txt").write_text("x")
        ...     len(tree_digest(Path(d)))
        64
    """
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines.append(f"{path.relative_to(folder).as_posix()}\0{file_digest(path)}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ModelClaims:
    """What a signature vouches for: this run's model files, ONNX graph and format."""

    run_id: str
    model_digest: str
    onnx_digest: str
    serialization: str

    def payload(self) -> bytes:
        """The canonical bytes the HMAC covers."""
        fields = [_SCHEME, self.run_id, self.model_digest, self.onnx_digest, self.serialization]
        return json.dumps(fields, separators=(",", ":")).encode("utf-8")

    def tags(self, key: SigningKey) -> dict[str, str]:
        """The version tags recording these claims, signed with ``key``."""
        return {
            MODEL_DIGEST_TAG: self.model_digest,
            ONNX_DIGEST_TAG: self.onnx_digest,
            SIGNATURE_TAG: key.sign(self),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], *, what: str) -> ModelClaims:
        """The claims a version's tags make.

        Raises:
            ModelIntegrityError: the version carries no signature (``what`` names it).
        """
        if SIGNATURE_TAG not in tags or MODEL_DIGEST_TAG not in tags:
            raise ModelIntegrityError(
                f"{what} is not signed; Conveyor loads only versions it signed at registration"
            )
        return cls(
            run_id=tags.get(RUN_TAG, ""),
            model_digest=tags[MODEL_DIGEST_TAG],
            onnx_digest=tags.get(ONNX_DIGEST_TAG, ""),
            serialization=tags.get(SERIALIZATION_TAG, ""),
        )


@dataclass(frozen=True)
class SigningKey:
    """One HMAC key; its id (8 hex characters of its hash) is written in signatures."""

    secret: bytes

    @property
    def key_id(self) -> str:
        """A short public name of the key (it reveals nothing of the key itself)."""
        return hashlib.sha256(b"conveyor-key-id" + self.secret).hexdigest()[:8]

    def sign(self, claims: ModelClaims) -> str:
        """``v1:<key id>:<hex HMAC-SHA256>`` over the claims."""
        mac = hmac.new(self.secret, claims.payload(), hashlib.sha256).hexdigest()
        return f"{_SCHEME}:{self.key_id}:{mac}"

    def matches(self, claims: ModelClaims, signature: str) -> bool:
        """Whether ``signature`` is this key's over ``claims`` (constant-time)."""
        return hmac.compare_digest(self.sign(claims).encode(), signature.encode())


def verify_claims(tags: Mapping[str, str], keys: list[SigningKey], *, what: str) -> ModelClaims:
    """The claims of a version's tags, once their signature checks out.

    Args:
        tags: the version's tags.
        keys: the keys in force (the signing key first, then previous ones).
        what: the version, for messages (``model 'm' version 3``).

    Returns:
        The authentic claims: compare the downloaded files' digests with them.

    Raises:
        ModelIntegrityError: unsigned, or signed by no key in force, or the signature does
            not match the tags (a tag or the signature was changed).
    """
    claims = ModelClaims.from_tags(tags, what=what)
    signature = tags[SIGNATURE_TAG]
    scheme, _, rest = signature.partition(":")
    key_id = rest.partition(":")[0]
    if scheme != _SCHEME:
        raise ModelIntegrityError(f"{what}: unknown signature scheme {scheme[:20]!r}")
    known = [k for k in keys if k.key_id == key_id]
    if not known:
        raise ModelIntegrityError(
            f"{what} is signed with key {key_id[:8]!r}, which is not among the keys in force"
            f" ({KEY_ENV}, {PREVIOUS_KEYS_ENV})"
        )
    if not known[0].matches(claims, signature):
        raise ModelIntegrityError(f"{what}: the signature does not match its recorded digests")
    return claims


def check_digest(expected: str, actual: str, *, what: str, part: str) -> None:
    """Refuse files whose digest differs from the signed one.

    Raises:
        ModelIntegrityError: the digests differ (``part``: "model files", "ONNX graph").
    """
    if not hmac.compare_digest(expected, actual):
        raise ModelIntegrityError(
            f"{what}: its {part} differ from what was signed at registration (tampered or"
            " corrupted); refusing to load it"
        )


def signing_keys(tracking_uri: str, *, create: bool = False) -> list[SigningKey]:
    """The keys in force for a store: the signing key first, then previous ones.

    Args:
        tracking_uri: the MLflow store (a SQLite store may keep its key beside it).
        create: make the key file of a SQLite store when there is none (registration).

    Returns:
        At least one key.

    Raises:
        ConfigError: a key is too short, or there is no key for a store that is not an
            embedded SQLite file (set ``CONVEYOR_SIGNING_KEY``).
    """
    current = os.environ.get(KEY_ENV, "").strip()
    previous = [k.strip() for k in os.environ.get(PREVIOUS_KEYS_ENV, "").split(",") if k.strip()]
    named = [(KEY_ENV, current)] if current else []
    for name, value in named + [(PREVIOUS_KEYS_ENV, k) for k in previous]:
        if len(value) < MIN_KEY_CHARS:
            raise ConfigError(f"{name}: a signing key needs at least {MIN_KEY_CHARS} characters")
    if not current:
        current = _key_file_secret(tracking_uri, create=create)
    return [SigningKey(k.encode("utf-8")) for k in (current, *previous)]


def require_signing_key(tracking_uri: str) -> None:
    """Fail before any work when a run could not sign what it registers into this store.

    Raises:
        ConfigError: no key for a store that is not an embedded SQLite file (whose key
            file is made at its first registration), or a key that is too short.
    """
    if os.environ.get(KEY_ENV, "").strip() or key_file(tracking_uri) is None:
        signing_keys(tracking_uri)


def _key_file_secret(tracking_uri: str, *, create: bool) -> str:
    path = key_file(tracking_uri)
    if path is None:
        raise ConfigError(
            f"set {KEY_ENV} (at least {MIN_KEY_CHARS} characters): models in a shared store"
            " are signed and verified with it"
        )
    if not path.is_file():
        if not create:
            raise ModelIntegrityError(
                f"no signing key: {path} does not exist and {KEY_ENV} is not set"
            )
        _write_key(path)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: a signing key needs at least {MIN_KEY_CHARS} characters")
    return secret


def key_file(tracking_uri: str) -> Path | None:
    """Where an embedded SQLite store keeps its signing key (None for other stores)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(unquote(tracking_uri.removeprefix("sqlite:///").partition("?")[0]))
    return database.resolve().parent / KEY_FILE


def _write_key(path: Path) -> None:
    """Write a new random key, whole or not at all (hard-linked into place, so a second
    process creating it at the same time keeps the first one's key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            logger.info("created the model signing key %s", path)
        except FileExistsError:
            pass  # another process made it first: use that one
    finally:
        tmp.unlink(missing_ok=True)
