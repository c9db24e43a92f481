"""LangGraph's `BaseStore` over imprint's observation store.

Why: a LangGraph application can then read and write the very preferences the imprint agent recalls and
consolidates, through the store API LangGraph nodes already use (`get_store()`, the `store` argument).

Mapping. One namespace is one user. An adapter serves one tenant, as an API key does: built with
`tenant="acme"`, a namespace is `("acme", user_id)` and is stored as `scoped_user("acme", user_id)`; built
with `tenant=None` (auth off), a namespace is `(user_id,)`. A namespace naming another tenant is refused, so
code holding tenant A's adapter cannot reach tenant B's users by spelling B's name. A key is an observation
id, so unlike LangGraph's usual keys it is unique across the whole store, not within one namespace: putting
a new item under a key another user holds is refused (`InvalidInput`). An item's value is the
observation's content (`VALUE_FIELDS`), and both its timestamps are the observation's `created_at` (the
record keeps no update time; `ObservationStore.history` has the changes).

Search, like every read of the observation store, is per user: its namespace must name one user. LangGraph
forbids '.' in namespace labels, so user ids containing '.' cannot be addressed and are not listed.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from memory.errors import InvalidInput, NotFound
from memory.observations import Observation, Polarity, Status
from memory.store import ObservationStore
from memory.tenancy import in_tenant, public_user, scoped_user, validate_tenant

log = logging.getLogger(__name__)

VALUE_FIELDS = ("aspect", "value", "polarity", "evidence", "confidence", "status", "thread_id", "explicit")
REQUIRED_FIELDS = ("aspect", "value")
FIXED_FIELDS = ("thread_id", "explicit")  # `ObservationStore.update` cannot change them
# a put is the application's own statement, not an extractor's guess from a hint
DEFAULT_CONFIDENCE = 1.0
DEFAULT_EXPLICIT = True
REASON = "written through the LangGraph store adapter"
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
Condition = tuple[str, Callable[[Any, Any], bool], Any]


class BadNamespace(InvalidInput, InvalidNamespaceError):
    """A namespace that names no user of this adapter's tenant.

    Both bases so that imprint callers (which map `InvalidInput` to a 4xx) and LangGraph code (which
    expects `InvalidNamespaceError`) each catch it as their own.
    """


def observation_value(obs: Observation) -> dict[str, Any]:
    """An observation's content as a JSON-ready item value."""
    return {
        "aspect": obs.aspect,
        "value": obs.value,
        "polarity": obs.polarity.value,
        "evidence": obs.evidence,
        "confidence": obs.confidence,
        "status": obs.status.value,
        "thread_id": obs.thread_id,
        "explicit": obs.explicit,
    }


def _checked_fields(value: object) -> dict[str, Any]:
    """A put's value, checked and with enums coerced, before anything is written."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"an item value must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - set(VALUE_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown observation fields {unknown}; the fields are {list(VALUE_FIELDS)}")
    missing = [f for f in REQUIRED_FIELDS if f not in value]
    if missing:
        raise InvalidInput(f"an observation needs {list(REQUIRED_FIELDS)}; missing {missing}")
    fields = dict(value)
    try:
        if "polarity" in fields:
            fields["polarity"] = Polarity(fields["polarity"])
        if "status" in fields:
            fields["status"] = Status(fields["status"])
    except ValueError as err:
        raise InvalidInput(f"bad observation value: {err}") from err
    if "explicit" in fields and not isinstance(fields["explicit"], bool):
        raise InvalidInput(f"explicit {fields['explicit']!r} must be true or false")
    return fields


def _conditions(filter_: object) -> list[Condition]:
    """A LangGraph filter as (field, comparison, operand) triples; unknown fields or operators are refused."""
    if filter_ is None:
        return []
    if not isinstance(filter_, Mapping):
        raise InvalidInput(f"a filter must be a mapping, got {type(filter_).__name__}")
    out: list[Condition] = []
    for field, cond in filter_.items():
        if field not in VALUE_FIELDS:
            raise InvalidInput(f"cannot filter on {field!r}; the fields are {list(VALUE_FIELDS)}")
        pairs = cond.items() if isinstance(cond, Mapping) else [("$eq", cond)]
        for name, operand in pairs:
            if name not in _OPERATORS:
                raise InvalidInput(f"unknown filter operator {name!r}; use one of {list(_OPERATORS)}")
            out.append((field, _OPERATORS[name], operand))
    return out


def _matches(value: Mapping[str, Any], conditions: list[Condition]) -> bool:
    try:
        return all(compare(value[field], operand) for field, compare, operand in conditions)
    except TypeError as err:
        raise InvalidInput(f"filter compares unlike types: {err}") from err


def _path_matches(cond: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether `namespace` starts (prefix) or ends (suffix) with `cond.path`, '*' matching any label."""
    path = tuple(cond.path)
    if cond.match_type not in ("prefix", "suffix"):
        raise InvalidInput(f"match type {cond.match_type!r} must be 'prefix' or 'suffix'")
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if cond.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p in ("*", label) for p, label in zip(path, part, strict=True))


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} {value!r} must be a non-negative integer")
    return value


def _status(value: object) -> Status:
    if not isinstance(value, str) or value not in set(Status):
        raise InvalidInput(f"status {value!r} must be one of {[s.value for s in Status]}")
    return Status(value)


def _time(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


class ImprintStore(BaseStore):
    """A LangGraph store whose items are one tenant's users' observations."""

    def __init__(self, store: ObservationStore, tenant: str | None = None) -> None:
        self.store = store
        self.tenant = None if tenant is None else validate_tenant(tenant)

    # -- the mapping ----------------------------------------------------------------------------------------

    def namespace_of(self, stored_user: str) -> tuple[str, ...]:
        """The namespace of a stored user id of this tenant (the inverse of `user_of`)."""
        user = public_user(self.tenant, stored_user)
        return (user,) if self.tenant is None else (self.tenant, user)

    def user_of(self, namespace: object) -> str:
        """The stored user id a namespace names; `BadNamespace` unless it is one user of this tenant."""
        shape = "(user_id,)" if self.tenant is None else f"({self.tenant!r}, user_id)"
        size = 1 if self.tenant is None else 2
        if not isinstance(namespace, tuple | list) or len(namespace) != size:
            raise BadNamespace(f"namespace {namespace!r} must name one user as {shape}")
        if self.tenant is not None and namespace[0] != self.tenant:
            raise BadNamespace(f"namespace {tuple(namespace)!r} is outside tenant {self.tenant!r}")
        try:
            return scoped_user(self.tenant, namespace[-1])
        except InvalidInput as err:
            raise BadNamespace(f"namespace {tuple(namespace)!r}: {err}") from err

    def _addressable(self, stored_user: str) -> bool:
        return in_tenant(self.tenant, stored_user) and "." not in public_user(self.tenant, stored_user)

    # -- BaseStore ------------------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run `ops` in order; not atomic: a failing op raises, and the ops before it stay done."""
        return [self._run(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """`batch` in a worker thread: chromadb and the embedder are synchronous and would block the loop."""
        return await asyncio.to_thread(self.batch, list(ops))

    def _run(self, op: Op) -> Result:
        try:
            validate_op_namespace(op)  # ops handed straight to `batch` skip BaseStore's own label checks
        except InvalidNamespaceError as err:
            raise BadNamespace(str(err)) from err
        if isinstance(op, GetOp):
            return self._get(op)
        if isinstance(op, PutOp):
            self._put(op)
            return None
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(op)
        raise InvalidInput(f"unsupported store operation {type(op).__name__}")

    def _get(self, op: GetOp) -> Item | None:
        user = self.user_of(op.namespace)
        try:
            obs = self.store.get(user, op.key)
        except NotFound:
            return None
        at = _time(obs.created_at)
        return Item(
            value=observation_value(obs),
            key=obs.id,
            namespace=tuple(op.namespace),
            created_at=at,
            updated_at=at,
        )

    def _put(self, op: PutOp) -> None:
        user = self.user_of(op.namespace)
        if op.ttl is not None:
            raise InvalidInput("observations live until deleted; this store does not support ttl")
        if op.value is None:
            try:
                self.store.delete(user, op.key, reason=REASON)
            except NotFound:
                log.debug("delete of absent observation %s of %s: nothing to do", op.key, user)
            return
        fields = _checked_fields(op.value)
        try:
            old = self.store.get(user, op.key)
        except NotFound:
            self._create(user, op.key, fields)
            return
        self._update(old, fields)

    def _create(self, user: str, key: str, fields: dict[str, Any]) -> None:
        obs = Observation(
            id=key,
            user_id=user,
            evidence=fields.get("evidence", ""),
            aspect=fields["aspect"],
            value=fields["value"],
            polarity=fields.get("polarity", Polarity.LIKES),
            confidence=fields.get("confidence", DEFAULT_CONFIDENCE),
            thread_id=fields.get("thread_id", ""),
            explicit=fields.get("explicit", DEFAULT_EXPLICIT),
            status=fields.get("status", Status.PENDING),
        )
        if "evidence" not in fields:  # no user sentence to quote: the summary is the closest thing to one
            obs = replace(obs, evidence=obs.summary())
        self.store.add(obs)

    def _update(self, old: Observation, fields: dict[str, Any]) -> None:
        for name in FIXED_FIELDS:
            if name in fields and fields[name] != getattr(old, name):
                raise InvalidInput(f"observation {old.id!r}: {name} cannot change; delete it and put anew")
        new = self.store.update(
            old.user_id,
            old.id,
            evidence=fields.get("evidence"),
            aspect=fields["aspect"],
            value=fields["value"],
            polarity=fields.get("polarity"),
            confidence=fields.get("confidence"),
            reason=REASON,
        )
        if "status" in fields and fields["status"] is not new.status:
            self.store.set_status(old.user_id, old.id, fields["status"], reason=REASON)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        # a prefix naming several users is refused: the observation store searches one user at a time
        user = self.user_of(op.namespace_prefix)
        namespace = tuple(op.namespace_prefix)
        limit, offset = _count(op.limit, "limit"), _count(op.offset, "offset")
        conditions = _conditions(op.filter)
        # a plain status condition narrows the store's own query; every condition is re-checked below
        wanted = next((v for f, c, v in conditions if f == "status" and c is operator.eq), None)
        status = None if wanted is None else _status(wanted)
        hits: list[tuple[Observation, float | None]]
        if op.query:
            others = any(f != "status" or c is not operator.eq for f, c, _ in conditions)
            # other conditions are applied after ranking, so rank every candidate they might keep
            k = self.store.count(user, status) if others else offset + limit
            hits = list(self.store.search(user, op.query, k=k, status=status)) if k else []
        else:
            hits = [(o, None) for o in self.store.list(user, status)]
        kept = [(o, s) for o, s in hits if _matches(observation_value(o), conditions)]
        return [
            SearchItem(namespace, o.id, observation_value(o), _time(o.created_at), _time(o.created_at), s)
            for o, s in kept[offset : offset + limit]
        ]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        limit, offset = _count(op.limit, "limit"), _count(op.offset, "offset")
        found = sorted(self.namespace_of(u) for u in self.store.users() if self._addressable(u))
        for cond in op.match_conditions or ():
            found = [ns for ns in found if _path_matches(cond, ns)]
        if op.max_depth is not None:
            if _count(op.max_depth, "max_depth") == 0:
                raise InvalidInput("max_depth must be at least 1")
            found = list(dict.fromkeys(ns[: op.max_depth] for ns in found))
        return found[offset : offset + limit]
