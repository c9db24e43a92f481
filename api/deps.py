"""FastAPI dependencies: typed aliases for the components built in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent.chat_agent import ChatAgent
from api.runtime import Runtime
from memory.store import ObservationStore


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_agent(request: Request) -> ChatAgent:
    return get_runtime(request).require_agent()


def get_store(request: Request) -> ObservationStore:
    return get_runtime(request).store


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
AgentDep = Annotated[ChatAgent, Depends(get_agent)]
StoreDep = Annotated[ObservationStore, Depends(get_store)]
