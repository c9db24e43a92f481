"""`POST /v1/users/{user_id}/chat`: one personalised chat turn, with the memories that shaped it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AgentDep, PrincipalDep
from api.schemas.chat import ChatPublic, ChatRequest, RecalledPublic
from api.schemas.common import ERRORS, UserPath

router = APIRouter(prefix="/v1/users", tags=["chat"])


@router.post("/{user_id}/chat", response_model=ChatPublic, responses=ERRORS)
def chat(user_id: UserPath, body: ChatRequest, agent: AgentDep, principal: PrincipalDep) -> ChatPublic:
    """Answer `body.message` for `user_id` in `body.thread_id`, recalling and then observing preferences."""
    result = agent.chat(principal.user(user_id), body.message, body.thread_id)
    return ChatPublic(
        user_id=user_id,
        thread_id=result.thread_id,
        turn=result.turn,
        reply=result.reply,
        recalled=[RecalledPublic(**r) for r in result.recalled],
    )
