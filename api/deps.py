"""FastAPI dependencies: typed aliases for the components built in the app's lifespan, and the caller's
tenant from its API key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.chat_agent import ChatAgent
from api.auth import Principal
from api.runtime import Runtime
from consolidation.scheduler import ConsolidationService
from memory.store import ObservationStore
from memory.weights.weight_memory import WeightMemory

T = TypeVar("T")
_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer imp_...` (what OpenAI clients send)"
)
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Or the key in `X-API-Key`.")


class Unauthorized(Exception):
    """No valid API key: answered 401 with a `WWW-Authenticate` challenge."""


class Unavailable(Exception):
    """A capability this deployment was started without (e.g. consolidation with no data directory): 503."""


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    """The tenant of the request's API key; with auth off, the local space (`tenant=None`)."""
    rt = get_runtime(request)
    if not rt.settings.auth:
        return Principal(tenant=None)
    key = bearer.credentials if bearer is not None else header
    if not key:
        raise Unauthorized("an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`")
    record = rt.keys.authenticate(key)
    if record is None:
        raise Unauthorized("the API key is unknown or revoked")
    return Principal(tenant=record.tenant)


def get_agent(request: Request) -> ChatAgent:
    return _available(get_runtime(request).require_agent)


def get_store(request: Request) -> ObservationStore:
    return get_runtime(request).store


def get_weights(request: Request) -> WeightMemory:
    return _available(get_runtime(request).require_weights)


def get_consolidation(request: Request) -> ConsolidationService:
    return _available(get_runtime(request).require_consolidation)


def _available(require: Callable[[], T]) -> T:
    try:
        return require()
    except RuntimeError as exc:
        raise Unavailable(str(exc)) from exc


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AgentDep = Annotated[ChatAgent, Depends(get_agent)]
StoreDep = Annotated[ObservationStore, Depends(get_store)]
WeightsDep = Annotated[WeightMemory, Depends(get_weights)]
ConsolidationDep = Annotated[ConsolidationService, Depends(get_consolidation)]
