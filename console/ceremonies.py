"""What the console keeps between the two halves of a WebAuthn ceremony, and its invitations.

- **Ceremonies** (in memory, a few minutes, each used once): the random challenge of a sign-in, the enrolment a
  passkey was just created for (waiting for the passkey's consent). A restart forgets them: the human starts over.
- **Invitations**: ``tabellion console invite`` (on the operator's host, with the console's configuration) signs a
  link naming the approver's DID, or none; whoever opens it may enrol *their* passkey as that approver (without one:
  as the passkey's own did:key, made in the ceremony), once, within a day. A named approver must be one the console's
  operator may name (``verifier.claims.check_approver_named``: the operator itself, or a did:web at or under its own
  did:web), else the invitation is refused at once, ``approver-not-entitled``, as the log would refuse the enrolment.
  The link is a bearer secret for the operator to hand to the human only. Spent invitations are recorded in
  ``<data_dir>/invitations-spent`` (one id a line) so that a link enrols one passkey: the enrolment is submitted
  inside ``Invitations.spending``, which checks the link again and holds it while the log answers, so two browsers
  that both opened the link and created a passkey before either consented enrol one passkey, not two.
- **The session secret** (``<data_dir>/session.key``, 32 random bytes, mode 0600) signs session cookies and
  invitations.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from schemas.errors import ConfigurationError, TabellionError
from verifier.claims import check_approver_named

CEREMONY_TTL_S: Final = 300
INVITATION_TTL_S: Final = 24 * 3600
SESSION_KEY_BYTES: Final = 32
_INVITATION_SALT: Final = "tabellion-console-invitation"


class CeremonyExpired(TabellionError):
    code = "ceremony-expired"
    title = "The passkey ceremony expired"


class InvitationInvalid(TabellionError):
    code = "invitation-invalid"
    title = "The invitation cannot be used"


def session_secret(data_dir: Path) -> bytes:
    """The console's session secret, created (0600, exclusively) on first start."""
    path = data_dir / "session.key"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(SESSION_KEY_BYTES))
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read or create the session secret {path}: {exc.strerror or exc}") from exc
    if len(secret) < SESSION_KEY_BYTES:
        raise ConfigurationError(f"the session secret {path} is shorter than {SESSION_KEY_BYTES} bytes")
    return secret


class Ceremonies:
    """Short-lived values keyed by a random id, each taken once."""

    def __init__(self, ttl_s: float = CEREMONY_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, str, Any]] = {}

    def put(self, purpose: str, value: Any) -> str:
        ident = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
            self._values[ident] = (now + self.ttl_s, purpose, value)
        return ident

    def take(self, purpose: str, ident: object) -> Any:
        with self._lock:
            found = self._values.pop(ident, None) if isinstance(ident, str) else None
        if found is None or found[1] != purpose or found[0] < time.monotonic():
            raise CeremonyExpired(f"no {purpose} is under way in this session (it expired, or was used); start again")
        return found[2]


@dataclass(frozen=True)
class Invitation:
    ident: str
    approver: str | None
    """The approver's DID; ``None``: the did:key of the passkey the ceremony creates."""
    name: str


class Invitations:
    def __init__(self, secret: bytes, data_dir: Path) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=_INVITATION_SALT)
        self.spent_path = data_dir / "invitations-spent"
        self._lock = threading.Lock()
        self._using: set[str] = set()  # invitations whose enrolment is being logged

    def make(self, approver: str | None, name: str, *, owner: str) -> str:
        """A link for a human to enrol a passkey as ``approver`` (``None``: as the passkey's own did:key) in the
        namespace of ``owner`` (the console's operator), who must be entitled to name ``approver``."""
        if approver is not None:
            if not approver.startswith("did:"):
                raise InvitationInvalid("the approver is named by a DID")
            check_approver_named(approver, signer=owner)
        return str(self.serializer.dumps({"id": secrets.token_urlsafe(16), "approver": approver, "name": name}))

    def read(self, token: str) -> Invitation:
        try:
            value = self.serializer.loads(token, max_age=INVITATION_TTL_S)
        except SignatureExpired as exc:
            raise InvitationInvalid("the invitation expired; ask the operator for a new one") from exc
        except BadSignature as exc:
            raise InvitationInvalid("the invitation is not one this console made") from exc
        approver = value.get("approver")
        invitation = Invitation(str(value["id"]), None if approver is None else str(approver), str(value["name"]))
        if invitation.ident in self._spent():
            raise InvitationInvalid("the invitation was used already")
        return invitation

    @contextmanager
    def spending(self, invitation: Invitation) -> Iterator[None]:
        """Around the logging of the enrolment an invitation allows: refused (``invitation-invalid``) if the link
        is spent or another enrolment of it is being logged; spent when the block ends normally, free again if
        it raised (the enrolment was refused, nothing logged)."""
        with self._lock:
            if invitation.ident in self._using or invitation.ident in self._spent():
                raise InvitationInvalid("the invitation was used already")
            self._using.add(invitation.ident)
        try:
            yield
            with self._lock, self.spent_path.open("a", encoding="utf-8") as fh:
                fh.write(invitation.ident + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            with self._lock:
                self._using.discard(invitation.ident)

    def _spent(self) -> set[str]:
        try:
            return set(self.spent_path.read_text(encoding="utf-8").split())
        except FileNotFoundError:
            return set()
