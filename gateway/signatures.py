"""RFC 9421 HTTP Message Signatures on agent requests, with Ed25519 (``alg`` ``ed25519``, §3.3.6) or ECDSA on
P-256 with SHA-256 (``alg`` ``ecdsa-p256-sha256``, §3.3.4: the signature is r || s, 32 bytes each), the kind of
key the agent holds (a TPM-resident agent key is P-256). ``alg``, when present, must name the agent key's kind.

The gateway accepts a request only when one signature in its ``Signature-Input``/``Signature`` fields
(RFC 9421 §4, RFC 8941 Dictionaries) verifies with the agent's key and covers what the gateway decides on:

- ``@method`` and ``@target-uri`` — what is being done to which resource;
- ``content-digest`` (RFC 9530) whenever the request has content, and the digest must match that content;
- the agent identity headers (``AGENT_IDENTITY_HEADERS``), which name who is acting under whose authority:

  ``Tabellion-Namespace``       the operator namespace the agent belongs to;
  ``Tabellion-Subject``         the agent's DID (the subject of its passport);
  ``Tabellion-Agent-Key``       the key id of the agent key that made this signature;
  ``Tabellion-Agent-Passport``  the log entry id of the agent passport the request relies on.

Signature parameters (§2.3): ``created`` (required), ``expires``, ``keyid`` (required), ``alg``, ``nonce``
(required unless the caller opts out: replay protection stores it, see ``gateway.replay``) and ``tag``; any
other parameter is refused. Derived components supported: ``@method``, ``@target-uri``, ``@authority``,
``@scheme``, ``@request-target``, ``@path``, ``@query``; component parameters (``sf``, ``key``, ``bs``,
``req``, ``tr``, ``name``) are not, and a signature that uses one is refused.

Some clients (Sigilum's SDKs) sign the method lower-cased. ``verify_request(lowercase_method_compat=True)``
accepts such a signature when the base with the method as sent does not verify; it is never the default.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import SplitResult, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from schemas.errors import (
    ComponentMissing,
    ComponentNotCovered,
    InvalidParameter,
    RequestSignatureInvalid,
    SignatureAlgorithmMismatch,
    SignatureBaseInvalid,
    SignatureCreatedInFuture,
    SignatureExpired,
    SignatureInputInvalid,
    SignatureKeyUnknown,
    SignatureLabelMissing,
    SignatureMissing,
    SignatureParameterMissing,
    SignatureTagMismatch,
    SignatureTooOld,
    StructuredFieldMalformed,
)

from .content_digest import SHA_256, content_digest, verify_content_digest
from .structured_fields import (
    BareItem,
    Dictionary,
    InnerList,
    Item,
    Parameters,
    param,
    parse_dictionary,
    serialize_dictionary,
    serialize_inner_list,
)

ALG_ED25519 = "ed25519"
ALG_ECDSA_P256 = "ecdsa-p256-sha256"
_P256_SIZE = 32
AGENT_IDENTITY_HEADERS = (
    "tabellion-namespace",
    "tabellion-subject",
    "tabellion-agent-key",
    "tabellion-agent-passport",
)
DEFAULT_REQUIRED_COMPONENTS = ("@method", "@target-uri", *AGENT_IDENTITY_HEADERS)
DEFAULT_MAX_SKEW = 30  # seconds a signer's clock may be ahead of or behind ours
DEFAULT_MAX_AGE = 300  # seconds after ``created`` that a signature is still accepted
DEFAULT_LABEL = "sig1"

DERIVED_COMPONENTS = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
_INTEGER_PARAMETERS = frozenset({"created", "expires"})
_STRING_PARAMETERS = frozenset({"keyid", "alg", "nonce", "tag"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_OBS_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls but HTAB, and DEL (§2.5)
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

AgentKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
KeyResolver = Callable[[str], AgentKey | None]
"""Maps a ``keyid`` to the agent's public key (Ed25519 or P-256), or None when the key is unknown."""


class ExternalSigner(Protocol):
    """A key held elsewhere (a TPM, an agent SDK's key): ``sign`` returns the raw signature of the message, r || s
    over its SHA-256 for P-256, the 64-byte signature for Ed25519."""

    def public_key(self) -> AgentKey: ...

    def sign(self, message: bytes) -> bytes: ...


SigningKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | ExternalSigner


def algorithm_of(key: SigningKey | AgentKey) -> str:
    """``ed25519`` or ``ecdsa-p256-sha256``: the RFC 9421 algorithm of a key (private, public or external)."""
    public = key if isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey) else key.public_key()
    if isinstance(public, Ed25519PublicKey):
        return ALG_ED25519
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return ALG_ECDSA_P256
    raise InvalidParameter("an agent key is Ed25519 or ECDSA P-256")


def _raw_signature(key: SigningKey, base: bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(base)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(base, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_SIZE, "big") + s.to_bytes(_P256_SIZE, "big")
    return key.sign(base)


@dataclass(frozen=True)
class Request:
    """A request as the gateway received it, independent of any web framework.

    ``target_uri`` is the absolute target URI (RFC 9110 §7.1, e.g. ``https://api.example/v1/x?y=1``);
    ``headers`` are the field lines in order, names in any case; ``body`` is the content as received.
    """

    method: str
    target_uri: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def field(self, name: str) -> str | None:
        """The value of field ``name`` (any case), its lines combined with ", " (§2.1), or None if absent."""
        lines = self._lines.get(name.lower())
        return ", ".join(_trim(v) for v in lines) if lines else None

    @functools.cached_property
    def _lines(self) -> dict[str, list[str]]:
        """The field lines by lower-cased name, in order (made once: a decision looks up a dozen fields)."""
        lines: dict[str, list[str]] = {}
        for key, value in self.headers:
            lines.setdefault(key.lower(), []).append(value)
        return lines

    def with_fields(self, *fields: tuple[str, str], replace: Sequence[str] = ()) -> Request:
        """A copy with ``fields`` appended, after dropping every line of the fields named in ``replace``."""
        drop = {n.lower() for n in replace}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in drop)
        return dataclasses.replace(self, headers=kept + tuple(fields))


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature vouches for.

    ``valid_until`` is the last second at which this signature could still be accepted (``expires`` or
    ``created + max_age``, whichever is earlier, plus the allowed skew): a replay store keeps its nonce that
    long. ``method_lowercased`` is True when it verified only in the lower-cased-method compatibility mode.
    """

    label: str
    keyid: str
    covered_components: tuple[str, ...]
    params: Parameters
    created: int
    expires: int | None
    nonce: str | None
    tag: str | None
    valid_until: int
    method_lowercased: bool = False


def required_for(request: Request, base: Sequence[str] = DEFAULT_REQUIRED_COMPONENTS) -> tuple[str, ...]:
    """``base`` plus ``content-digest`` when the request has content: what a signature must cover."""
    names = tuple(n.lower() for n in base)
    return names + ("content-digest",) if request.body and "content-digest" not in names else names


# --- the signature base (§2.5) --------------------------------------------------------------------


def signature_base(request: Request, covered: InnerList, *, lowercase_method: bool = False) -> bytes:
    """The RFC 9421 §2.5 signature base of ``request`` for the covered components and parameters in
    ``covered`` (the Signature-Input member): one ``"name": value`` line per component, then
    ``"@signature-params"``, joined by LF with no trailing newline."""
    names = _component_names(covered)
    lines = []
    for name in names:
        value = _derived(request, name, lowercase_method) if name.startswith("@") else _field(request, name)
        lines.append(f'"{name}": {value}')  # a checked field name or derived component: a String as is
    lines.append(f'"@signature-params": {serialize_inner_list(covered)}')
    base = "\n".join(lines)
    if not base.isascii():
        raise SignatureBaseInvalid("the signature base contains non-ASCII characters")
    return base.encode("ascii")


def _component_names(covered: InnerList) -> tuple[str, ...]:
    names: list[str] = []
    for item in covered.items:
        name = item.value
        if not isinstance(name, str):
            raise SignatureInputInvalid("every covered component identifier must be a structured-field String")
        if item.params:
            raise SignatureInputInvalid(
                f"component parameters ({', '.join(k for k, _ in item.params)}) on {name!r} are not supported"
            )
        if name in names:
            raise SignatureInputInvalid(f"component {name!r} is covered twice")
        if name == "@signature-params":
            raise SignatureInputInvalid('"@signature-params" cannot be a covered component')
        if name.startswith("@"):
            if name not in DERIVED_COMPONENTS:
                raise SignatureInputInvalid(f"derived component {name!r} is not supported")
        elif not _FIELD_NAME.fullmatch(name):
            raise SignatureInputInvalid(f"{name!r} is not a lower-cased HTTP field name")
        names.append(name)
    return tuple(names)


def _field(request: Request, name: str) -> str:
    value = request.field(name)
    if value is None:
        raise ComponentMissing(f"the signature covers the field {name!r}, which the request does not have")
    if _CONTROL.search(value):
        raise SignatureBaseInvalid(f"the value of field {name!r} contains control characters")
    return value


def _trim(value: str) -> str:
    """§2.1: a field line without leading and trailing whitespace, obsolete line folding made one space."""
    return _OBS_FOLD.sub(" ", value).strip(" \t")


def _derived(request: Request, name: str, lowercase_method: bool) -> str:
    if name == "@method":
        if not _METHOD.fullmatch(request.method):
            raise SignatureBaseInvalid(f"{request.method[:40]!r} is not an HTTP method")
        return request.method.lower() if lowercase_method else request.method
    uri = _split_target(request.target_uri)
    path = uri.path or "/"
    if name == "@target-uri":
        if uri.path:
            return request.target_uri
        at = len(uri.scheme) + 3 + len(uri.netloc)
        return request.target_uri[:at] + "/" + request.target_uri[at:]
    if name == "@authority":
        return _authority(uri)
    if name == "@scheme":
        return uri.scheme.lower()
    if name == "@path":
        return path
    if name == "@query":
        return "?" + uri.query
    # "@request-target": the origin form (path and query) of a request to an http(s) URI.
    return path + ("?" + uri.query if "?" in request.target_uri else "")


def _split_target(target_uri: str) -> SplitResult:
    if not target_uri.isascii() or any(c <= " " or c == "\x7f" for c in target_uri):
        raise SignatureBaseInvalid("the target URI must be ASCII without spaces or control characters")
    try:
        uri = urlsplit(target_uri)
    except ValueError as e:
        raise SignatureBaseInvalid(f"the target URI does not parse: {e}") from e
    if uri.scheme.lower() not in ("http", "https") or not uri.netloc or "@" in uri.netloc:
        raise SignatureBaseInvalid("the target URI must be an absolute http(s) URI without user information")
    if uri.fragment or "#" in target_uri:
        raise SignatureBaseInvalid("the target URI cannot have a fragment")
    return uri


def _authority(uri: SplitResult) -> str:
    """§2.2.3: the authority, host lower-cased and the scheme's default port removed (RFC 9110 §4.2.3)."""
    netloc = uri.netloc.lower()
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        raise SignatureBaseInvalid(f"the port {port[:20]!r} of the target URI is not a number")
    if not port or port == _DEFAULT_PORTS.get(uri.scheme.lower()):
        return host
    return f"{host}:{port}"


# --- signing --------------------------------------------------------------------------------------


def sign_request(
    request: Request,
    *,
    key: SigningKey,
    keyid: str,
    created: int,
    label: str = DEFAULT_LABEL,
    components: Sequence[str] | None = None,
    expires: int | None = None,
    nonce: str | None = None,
    tag: str | None = None,
    include_alg: bool = True,
    digest_algorithm: str = SHA_256,
) -> Request:
    """Sign ``request`` and return it with its ``Signature-Input`` and ``Signature`` fields.

    ``components`` defaults to what ``verify_request`` requires by default, leaving out identity headers the
    request does not have. When ``content-digest`` is covered and the request has none, a
    ``Content-Digest`` of the body is added first. Existing signatures under other labels are kept.
    """
    names = tuple(components) if components is not None else _default_components(request)
    if "content-digest" in names and request.field("content-digest") is None:
        request = request.with_fields(("Content-Digest", content_digest(request.body, (digest_algorithm,))))
    params: list[tuple[str, BareItem]] = [("created", created)]
    if expires is not None:
        params.append(("expires", expires))
    params.append(("keyid", keyid))
    if include_alg:
        params.append(("alg", algorithm_of(key)))
    if nonce is not None:
        params.append(("nonce", nonce))
    if tag is not None:
        params.append(("tag", tag))
    covered = InnerList(tuple(Item(n) for n in names), tuple(params))
    signature = _raw_signature(key, signature_base(request, covered))
    inputs = _dictionary(request, "signature-input") or {}
    signatures = _dictionary(request, "signature") or {}
    if label in inputs or label in signatures:
        raise InvalidParameter(f"the request already has a signature labelled {label!r}")
    inputs[label] = covered
    signatures[label] = Item(signature)
    return request.with_fields(
        ("Signature-Input", serialize_dictionary(inputs)),
        ("Signature", serialize_dictionary(signatures)),
        replace=("signature-input", "signature"),
    )


def _default_components(request: Request) -> tuple[str, ...]:
    required = required_for(request)
    return tuple(n for n in required if n.startswith("@") or n == "content-digest" or request.field(n) is not None)


# --- verifying (§3.2) -----------------------------------------------------------------------------


def verify_request(
    request: Request,
    *,
    key_resolver: KeyResolver,
    now: int,
    label: str | None = None,
    required_components: Sequence[str] = DEFAULT_REQUIRED_COMPONENTS,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_age: int = DEFAULT_MAX_AGE,
    tag: str | None = None,
    require_nonce: bool = True,
    lowercase_method_compat: bool = False,
) -> VerifiedSignature:
    """Verify the request's signature (the one under ``label``, or its only one) and return what it covers.

    ``required_components`` must all be covered; ``content-digest`` is required on top whenever the request
    has content, and the digest is checked against it. ``now`` is the current Unix time in seconds; a
    signature is accepted from ``created - max_skew`` to ``min(expires, created + max_age) + max_skew``.
    Raises a ``RequestSignatureRefused`` naming the reason; malformed fields raise errors that are also
    ``BadInput`` (``StructuredFieldMalformed``, ``SignatureInputInvalid``, ``SignatureBaseInvalid``).
    """
    inputs = _dictionary(request, "signature-input", unique_keys=True)
    signatures = _dictionary(request, "signature", unique_keys=True)
    if not inputs or not signatures:
        raise SignatureMissing("the request needs both a Signature-Input and a Signature field, neither empty")
    chosen = _select_label(inputs, signatures, label, tag)
    covered, signature = inputs[chosen], signatures[chosen]
    if not isinstance(covered, InnerList):
        raise SignatureInputInvalid(f"Signature-Input member {chosen!r} is not an inner list")
    if not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        raise SignatureInputInvalid(f"Signature member {chosen!r} is not a byte sequence")
    names = _component_names(covered)
    p = _check_params(covered.params, require_nonce=require_nonce)
    if tag is not None and p.tag != tag:
        raise SignatureTagMismatch(f"signature {chosen!r} has tag {p.tag!r}, expected {tag!r}")
    valid_until = _check_time(p, now=now, max_skew=max_skew, max_age=max_age)
    missing = [n for n in required_for(request, required_components) if n not in names]
    if missing:
        raise ComponentNotCovered(f"signature {chosen!r} does not cover {', '.join(missing)}")
    key = key_resolver(p.keyid)
    if key is None:
        raise SignatureKeyUnknown(f"no agent key is known under keyid {p.keyid[:200]!r}")
    if p.alg is not None and p.alg != algorithm_of(key):
        raise SignatureAlgorithmMismatch(f"signature algorithm {p.alg[:40]!r} is not {algorithm_of(key)!r}, the "
                                         "algorithm of the agent's key")
    lowered = _verify(key, signature.value, request, covered, lowercase_method_compat and "@method" in names)
    if request.body or "content-digest" in names:
        verify_content_digest(request.field("content-digest"), request.body)
    return VerifiedSignature(
        label=chosen,
        keyid=p.keyid,
        covered_components=names,
        params=covered.params,
        created=p.created,
        expires=p.expires,
        nonce=p.nonce,
        tag=p.tag,
        valid_until=valid_until,
        method_lowercased=lowered,
    )


def _dictionary(request: Request, name: str, *, unique_keys: bool = False) -> Dictionary | None:
    value = request.field(name)
    if value is None:
        return None
    try:
        return parse_dictionary(value, unique_keys=unique_keys)
    except StructuredFieldMalformed as e:
        raise StructuredFieldMalformed(f"the {name} field is not a structured-field dictionary: {e.detail}") from e


def _select_label(inputs: Dictionary, signatures: Dictionary, label: str | None, tag: str | None) -> str:
    if label is None:
        candidates = [k for k, v in inputs.items() if tag is None or param(v.params, "tag") == tag]
        if not candidates and inputs and tag is not None:
            raise SignatureTagMismatch(f"no signature on the request has the tag {tag!r}")
        if len(candidates) != 1:
            raise SignatureLabelMissing(
                f"{len(candidates)} signatures{'' if tag is None else f' tagged {tag!r}'} on the request; "
                "exactly one must be chosen (name its label)"
            )
        label = candidates[0]
    if label not in inputs or label not in signatures:
        raise SignatureLabelMissing(f"the request has no signature labelled {label!r} in both signature fields")
    return label


class _Params(NamedTuple):
    keyid: str
    created: int
    expires: int | None
    nonce: str | None
    tag: str | None
    alg: str | None


def _check_params(params: Parameters, *, require_nonce: bool) -> _Params:
    """§2.3: known parameters of the right types, ``keyid`` and ``created`` (and ``nonce``) present."""
    ints: dict[str, int] = {}
    strs: dict[str, str] = {}
    for name, value in params:
        if name in _INTEGER_PARAMETERS and isinstance(value, int) and not isinstance(value, bool):
            ints[name] = value
        elif name in _STRING_PARAMETERS and isinstance(value, str):
            strs[name] = value
        elif name in _INTEGER_PARAMETERS | _STRING_PARAMETERS:
            kind = "an integer" if name in _INTEGER_PARAMETERS else "a string"
            raise SignatureInputInvalid(f"signature parameter {name!r} must be {kind}")
        else:
            raise SignatureInputInvalid(f"signature parameter {name[:40]!r} is not one this gateway accepts")
    required = ("keyid", "created", "nonce") if require_nonce else ("keyid", "created")
    absent = [n for n in required if n not in ints and n not in strs]
    if absent:
        raise SignatureParameterMissing(f"the signature has no {', '.join(absent)} parameter")
    alg = strs.get("alg")
    if alg is not None and alg not in (ALG_ED25519, ALG_ECDSA_P256):
        raise SignatureAlgorithmMismatch(f"signature algorithm {alg[:40]!r} is not {ALG_ED25519!r} or "
                                         f"{ALG_ECDSA_P256!r}")
    created, expires = ints["created"], ints.get("expires")
    if expires is not None and expires < created:
        raise SignatureInputInvalid(f"expires {expires} is before created {created}")
    return _Params(strs["keyid"], created, expires, strs.get("nonce"), strs.get("tag"), alg)


def _check_time(p: _Params, *, now: int, max_skew: int, max_age: int) -> int:
    """Refuse a signature outside its validity window; return the window's end (see ``VerifiedSignature``)."""
    if p.created > now + max_skew:
        raise SignatureCreatedInFuture(f"created {p.created} is {p.created - now} s ahead of now ({now})")
    if now - p.created > max_age + max_skew:
        raise SignatureTooOld(f"created {p.created} is {now - p.created} s ago; the limit is {max_age} s")
    if p.expires is not None and now > p.expires + max_skew:
        raise SignatureExpired(f"the signature expired at {p.expires}, {now - p.expires} s ago")
    end = p.created + max_age if p.expires is None else min(p.expires, p.created + max_age)
    return end + max_skew


def _check(key: AgentKey, signature: bytes, base: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` verifies over ``base``."""
    if isinstance(key, Ed25519PublicKey):
        key.verify(signature, base)
        return
    if len(signature) != 2 * _P256_SIZE:
        raise InvalidSignature
    r, s = int.from_bytes(signature[:_P256_SIZE], "big"), int.from_bytes(signature[_P256_SIZE:], "big")
    key.verify(encode_dss_signature(r, s), base, ec.ECDSA(hashes.SHA256()))


def _verify(key: AgentKey, signature: bytes, request: Request, covered: InnerList, try_lowercase: bool) -> bool:
    """Verify; return True when only the lower-cased-method base verified (compatibility mode)."""
    try:
        _check(key, signature, signature_base(request, covered))
        return False
    except InvalidSignature:
        if try_lowercase and request.method != request.method.lower():
            try:
                _check(key, signature, signature_base(request, covered, lowercase_method=True))
                return True
            except InvalidSignature:
                pass
    raise RequestSignatureInvalid(f"the {algorithm_of(key)} signature does not verify over the request's "
                                  "signature base")
