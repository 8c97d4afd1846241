"""The fold's state as bytes and back: the body of a snapshot (``transparency.snapshots`` keeps them on disk).

``encode_state`` turns an ``IdentityState`` into CBOR (RFC 8949) and ``decode_state`` turns it back into an equal
state, every field and every value, with the dictionaries in the same insertion order, so that folding more entries
onto a decoded state gives exactly what folding them onto the original gives. The per-entry ``outcomes`` are not
part of it: a follower that snapshots its state keeps them in an outcome store.

The encoding follows the dataclasses of ``verifier.identity_state`` by their type annotations, with no tags: a
dataclass is the array of its fields in declaration order, a tuple or list an array, a dict the flat array ``[k1,
v1, k2, v2, …]`` in insertion order, a set the sorted array of its members; ``Any`` values (a passport's credential,
a passkey assertion: parsed JSON) are CBOR as they are. An agent's newest passport and consent are also among all
accepted ones: they are encoded as the entry id that names them there (``REFERENCES``). Text and byte strings met
more than once (DIDs, entry ids) are written once and referred to after (the stringref tags 256 and 25), so that
the decoded state shares one string object per DID and entry id, as the folded one largely does. The encoding is
deterministic: equal states folded from the same log give the same bytes. It has no version of its own: a snapshot
is keyed by ``code_digest()``, a hash of the verifier's and the schemas' code, so a state written by other code is
never decoded (it is rebuilt from the log instead), and a change of these dataclasses needs no migration.

A body that does not decode to the expected shapes raises ``SnapshotUnusable``; the digest that guards it against
corruption is the container's (``transparency.snapshots``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import operator
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

import cbor2

from schemas.errors import SnapshotUnusable
from verifier import enrolments, identity_state
from verifier.identity_state import IdentityState

Codec = Callable[[Any], Any]
NOT_ENCODED: Final = frozenset({"outcomes"})
"""Fields of ``IdentityState`` kept elsewhere: one outcome per log entry (an outcome store on disk)."""


def encode_state(state: IdentityState) -> bytes:
    """The state (without its outcomes) as deterministic CBOR."""
    return cbor2.dumps(_STATE_CODEC[0](state), string_referencing=True)


def decode_state(data: bytes) -> IdentityState:
    """The state ``encode_state`` encoded, with an empty outcome list; ``SnapshotUnusable`` if it is not one."""
    try:
        value = cbor2.loads(data)
        state = _STATE_CODEC[1](value)
    except SnapshotUnusable:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, cbor2.CBORDecodeError) as exc:
        raise SnapshotUnusable(f"the snapshot's state does not decode: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, IdentityState):  # pragma: no cover - the codec builds one or raises
        raise SnapshotUnusable("the snapshot's state is not an identity state")
    return state


def copy_state(state: IdentityState) -> IdentityState:
    """A copy that the fold's later entries do not change, made in O(size) dict copies and no re-encoding:
    the state's values are frozen dataclasses (a decision's assertion is never changed after it is accepted);
    its dicts, sets and per-agent lists are copied. For writing a snapshot in the background while the fold goes
    on."""
    return dataclasses.replace(
        state,
        controllers=dict(state.controllers), namespaces=dict(state.namespaces), revoked=dict(state.revoked),
        outcomes=[], passports=dict(state.passports), passport_entries=dict(state.passport_entries),
        status_indices=dict(state.status_indices), delegations=dict(state.delegations), claims=dict(state.claims),
        claim_ids=dict(state.claim_ids), approvers=dict(state.approvers),
        approver_credentials=dict(state.approver_credentials), sign_counts=dict(state.sign_counts),
        delegations_to={k: list(v) for k, v in state.delegations_to.items()},
        claims_of={k: list(v) for k, v in state.claims_of.items()},
        consents=dict(state.consents), consent_entries=dict(state.consent_entries),
        delegation_contents=set(state.delegation_contents), did_web_evidence=dict(state.did_web_evidence),
    )


@functools.cache
def code_digest() -> str:
    """SHA-256 (hex) of the code that defines what a fold computes: every source file of ``verifier`` and
    ``schemas`` (Python, JSON Schemas, JSON-LD contexts), by relative path and content. A snapshot made by
    other code is not used."""
    digest = hashlib.sha256()
    for package in ("verifier", "schemas"):
        root = Path(__file__).resolve().parents[1] / package
        for path in sorted(_source_files(root)):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            data = path.read_bytes()
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _source_files(root: Path) -> Iterable[Path]:
    return (p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".jsonld")
            and "__pycache__" not in p.parts)


def signers_digest(service_signers: Iterable[str]) -> str:
    """SHA-256 (hex) of the fold's ``service_signers`` (sorted, NUL-separated): part of a snapshot's key, since
    the same log folds to another state with other trusted service signers."""
    return hashlib.sha256("\0".join(sorted(service_signers)).encode()).hexdigest()


# --- the type-directed codec ----------------------------------------------------------------------------------


def _identity(value: Any) -> Any:
    return value


def _typed(kind: type | tuple[type, ...], what: str) -> Codec:
    def check(value: Any) -> Any:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SnapshotUnusable(f"the snapshot holds a {type(value).__name__} where {what} belongs")
        return value
    return check


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise SnapshotUnusable(f"the snapshot holds a {type(value).__name__} where an array belongs")
    return value


def _scalars(value: Any, kind: type) -> list[Any]:
    """``value``, an array of ``kind`` (exactly: no bool for an int)."""
    items = _array(value)
    if not _EXACTLY[kind].issuperset(map(type, items)):
        raise SnapshotUnusable(f"the snapshot holds an array with an item that is not a {kind.__name__}")
    return items


def _codec(tp: Any) -> tuple[Codec, Codec]:
    """(encode, decode) for values of the annotated type ``tp``."""
    if tp is Any:
        return _identity, _identity
    if tp in (str, int, bytes, bool):
        return _identity, _typed(tp, tp.__name__)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_codec(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        allowed = frozenset(args)

        def literal(value: Any) -> Any:
            if value not in allowed:
                raise SnapshotUnusable(f"the snapshot holds {value!r} where one of {sorted(map(str, allowed))} belongs")
            return value
        return _identity, literal
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"no snapshot codec for {tp}")
        enc, dec = _codec(inner[0])
        return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            enc, dec = _codec(args[0])
            if args[0] in (str, bytes, int):
                return (lambda v: list(v)), (lambda v: tuple(_scalars(v, args[0])))
            return (lambda v: [enc(i) for i in v]), (lambda v: tuple(map(dec, _array(v))))
        codecs = [_codec(a) for a in args]

        def dec_tuple(value: Any) -> tuple[Any, ...]:
            items = _array(value)
            if len(items) != len(codecs):
                raise SnapshotUnusable(f"the snapshot holds {len(items)} items where {len(codecs)} belong")
            return tuple(d(i) for (_, d), i in zip(codecs, items, strict=True))
        return (lambda v: [e(i) for (e, _), i in zip(codecs, v, strict=True)]), dec_tuple
    if origin is list:
        enc, dec = _codec(args[0])
        if args[0] in (str, bytes, int):
            return (lambda v: list(v)), (lambda v: list(_scalars(v, args[0])))
        return (lambda v: [enc(i) for i in v]), (lambda v: list(map(dec, _array(v))))
    if origin is set:
        enc, dec = _codec(args[0])
        return (lambda v: sorted(enc(i) for i in v)), (lambda v: {dec(i) for i in _array(v)})
    if origin is dict:
        enc_k, dec_k = _codec(args[0])
        enc_v, dec_v = _codec(args[1])

        def enc_dict(value: dict[Any, Any]) -> list[Any]:
            flat: list[Any] = []
            for k, v in value.items():
                flat += (enc_k(k), enc_v(v))
            return flat

        key_kind = args[0] if args[0] in _SCALARS else None
        value_kind = args[1] if args[1] in _SCALARS else None

        def dec_dict(value: Any) -> dict[Any, Any]:
            flat = _array(value)
            if len(flat) % 2:
                raise SnapshotUnusable("the snapshot holds a map with an odd number of items")
            keys, values = flat[0::2], flat[1::2]
            if key_kind is None:
                keys = list(map(dec_k, keys))
            elif not _EXACTLY[key_kind].issuperset(map(type, keys)):
                raise SnapshotUnusable(f"the snapshot holds a map key that is not a {key_kind.__name__}")
            if value_kind is None:
                values = list(map(dec_v, values))
            elif not _EXACTLY[value_kind].issuperset(map(type, values)):
                raise SnapshotUnusable(f"the snapshot holds a map value that is not a {value_kind.__name__}")
            return dict(zip(keys, values, strict=True))
        return enc_dict, dec_dict
    raise TypeError(f"no snapshot codec for {tp}")


_SCALARS: Final = (str, int, bytes, bool)
_EXACTLY: Final[dict[type, frozenset[type]]] = {kind: frozenset({kind}) for kind in _SCALARS}


def _scalar_kinds(tp: Any) -> frozenset[type] | None:
    """The exact types a field of annotated type ``tp`` holds when it is a CBOR scalar or ``None`` and one
    (``str | None``); ``None`` for any other type (its codec checks it)."""
    if tp in _SCALARS:
        return _EXACTLY[tp]
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        inner = [a for a in args if a is not type(None)]
        if len(args) == 2 and len(inner) == 1 and inner[0] in _SCALARS:
            return frozenset({inner[0], type(None)})
    return None

_NAMES: Final = {**vars(enrolments), **vars(identity_state)}
"""The names ``IdentityState``'s annotations use (some are imported there only for type checking)."""
REFERENCES: Final = {"passports": "passport_entries", "consents": "consent_entries"}
"""Fields of ``IdentityState`` whose values are each also a value of another field, by entry id (an agent's
newest passport is one of the accepted passports): encoded as that entry id, decoded by looking it up."""


def _dataclass_codec(cls: type) -> tuple[Codec, Codec]:
    """A dataclass as the array of its fields. Decoding checks each field's type (scalars by their exact type)
    and builds the instance without its ``__init__`` (a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``: most of the decoding time); none of these classes has a ``__post_init__``."""
    hints = typing.get_type_hints(cls, _NAMES)
    fields = [f.name for f in dataclasses.fields(cls) if not (cls is IdentityState and f.name in NOT_ENCODED)]
    if cls is IdentityState:
        return _state_codec(fields, hints)
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):  # pragma: no cover - a guard for later changes
        raise TypeError(f"no snapshot codec for {cls.__name__}: it has __post_init__ or __slots__")
    codecs = [_codec(hints[name]) for name in fields]
    encoders = [enc for enc, _ in codecs]
    # the fields whose values are CBOR scalars (str, int, bytes, bool, or one of them or null) are checked by
    # their exact types in one pass; the others go through their codecs
    kinds = [_scalar_kinds(hints[name]) for name in fields]
    scalar_at = [i for i, kind in enumerate(kinds) if kind is not None]
    scalar_kinds = tuple(kind for kind in kinds if kind is not None)
    pick = operator.itemgetter(*scalar_at) if len(scalar_at) > 1 else None
    decoders = [(i, dec) for i, (kind, (_, dec)) in enumerate(zip(kinds, codecs, strict=True)) if kind is None]
    width = len(fields)
    new = object.__new__
    accepts = frozenset.__contains__

    def encode(value: Any) -> list[Any]:
        return [enc(getattr(value, name)) for name, enc in zip(fields, encoders, strict=True)]

    def decode(value: Any) -> Any:
        if type(value) is not list or len(value) != width:
            raise SnapshotUnusable(f"the snapshot holds no {cls.__name__} of {width} fields where one belongs")
        scalars = pick(value) if pick is not None else tuple(value[i] for i in scalar_at)
        if not all(map(accepts, scalar_kinds, map(type, scalars))):
            for kind, item in zip(scalar_kinds, scalars, strict=True):
                if type(item) not in kind:
                    raise SnapshotUnusable(f"the snapshot's {cls.__name__} holds a {type(item).__name__} where "
                                           f"{' or '.join(sorted(k.__name__ for k in kind))} belongs")
        for i, dec in decoders:
            value[i] = dec(value[i])  # the list is the decoder's own (a snapshot shares no arrays)
        instance: Any = new(cls)
        instance.__dict__.update(zip(fields, value, strict=True))
        return instance
    return encode, decode


def _state_codec(fields: list[str], hints: dict[str, Any]) -> tuple[Codec, Codec]:
    codecs = {name: _codec(hints[name]) for name in fields if name not in REFERENCES}

    def encode(state: IdentityState) -> list[Any]:
        out = []
        for name in fields:
            value = getattr(state, name)
            if name in REFERENCES:
                target = getattr(state, REFERENCES[name])
                if any(target.get(v.entry) != v for v in value.values()):
                    raise TypeError(f"{name} holds a value that {REFERENCES[name]} does not")
                out.append([item for k, v in value.items() for item in (k, v.entry)])
            else:
                out.append(codecs[name][0](value))
        return out

    def decode(value: Any) -> IdentityState:
        if type(value) is not list or len(value) != len(fields):
            raise SnapshotUnusable(f"the snapshot's state has no {len(fields)} fields")
        decoded = {name: codecs[name][1](item) for name, item in zip(fields, value, strict=True)
                   if name not in REFERENCES}
        for name, item in zip(fields, value, strict=True):
            if name in REFERENCES:
                flat, target = _array(item), decoded[REFERENCES[name]]
                if len(flat) % 2 or any(type(k) is not str for k in flat):
                    raise SnapshotUnusable(f"the snapshot's {name} is not a map of entry ids")
                try:
                    decoded[name] = {flat[i]: target[flat[i + 1]] for i in range(0, len(flat), 2)}
                except KeyError as exc:
                    raise SnapshotUnusable(
                        f"the snapshot's {name} names an entry its {REFERENCES[name]} lacks") from exc
        return IdentityState(**decoded)
    return encode, decode


_STATE_CODEC: Final = _codec(IdentityState)
