"""`POST /v1/users/{user_id}/chat`: one personalised chat turn."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AgentDep
from api.schemas import ChatPublic, ChatRequest, ErrorPublic, RecalledPublic

router = APIRouter(prefix="/v1/users", tags=["chat"])


@router.post(
    "/{user_id}/chat",
    response_model=ChatPublic,
    responses={422: {"model": ErrorPublic}, 404: {"model": ErrorPublic}},
)
def chat(user_id: str, body: ChatRequest, agent: AgentDep) -> ChatPublic:
    """Answer `body.message` for `user_id` in `body.thread_id`, recalling and then observing preferences."""
    result = agent.chat(user_id, body.message, body.thread_id)
    return ChatPublic(
        user_id=result.user_id,
        thread_id=result.thread_id,
        turn=result.turn,
        reply=result.reply,
        recalled=[RecalledPublic(**r) for r in result.recalled],
    )
