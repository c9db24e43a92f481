"""`POST /v1/chat/completions` and `GET /v1/models`: imprint behind the OpenAI chat API.

The request's `user` is the imprint user (inside the key's tenant); the turn is recalled, answered under
that user's weight memory and observed, exactly as `POST /v1/users/{id}/chat` does. With `stream`, tokens
go out as server-sent events in OpenAI's chunk format, ending with `data: [DONE]`.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from agent.chat_agent import TurnEvent, TurnResult
from api.deps import AgentDep, PrincipalDep, RuntimeDep
from api.schemas.common import ERRORS
from api.schemas.openai import (
    AssistantMessage,
    Choice,
    Completion,
    CompletionRequest,
    ImprintInfo,
    ModelList,
    ModelPublic,
    RecalledLine,
    Usage,
)
from memory.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["openai"])
STARTED = int(time.time())
_END = object()


def _turn(body: CompletionRequest, limit: int) -> str:
    """The new user turn: the request's last message, which must be the user's."""
    if len(body.messages) > limit:
        raise InvalidInput(f"{len(body.messages)} messages in one request; the limit is {limit}")
    last = body.messages[-1]
    if last.role != "user":
        raise InvalidInput(f"the last message must be the user's (role 'user'), not {last.role!r}")
    return last.text()


def _generation(body: CompletionRequest, most: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limit = body.max_completion_tokens or body.max_tokens
    if limit is not None:
        if limit > most:
            raise InvalidInput(f"max_tokens {limit} is over this deployment's limit of {most}")
        out["max_new_tokens"] = limit
    if body.temperature is not None:
        out["temperature"] = body.temperature
    return out


def _in_one_thread(events: Iterator[TurnEvent]) -> Iterator[TurnEvent]:
    """Drive the agent's stream in one dedicated thread and hand its events over a queue.

    The turn (recall, generation under the user's delta, checkpoint, observation) runs start to end on
    one thread even though the server resumes this iterator from whichever worker is free, and it
    completes even if the client disconnects mid-stream.
    """
    handoff: queue.Queue[object] = queue.Queue()

    def work() -> None:
        try:
            for event in events:
                handoff.put(event)
        except BaseException as exc:  # surfaces in the consumer
            handoff.put(exc)
        handoff.put(_END)

    threading.Thread(target=work, name="imprint-stream", daemon=True).start()
    while (item := handoff.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item  # type: ignore[misc]


def _finish_reason(result: TurnResult, generation: dict[str, Any], default_max: int) -> str:
    limit = generation.get("max_new_tokens", default_max)
    return "length" if result.completion_tokens >= limit else "stop"


def _info(rt_head: int, result: TurnResult) -> ImprintInfo:
    return ImprintInfo(
        thread_id=result.thread_id,
        turn=result.turn,
        recalled=[RecalledLine(**r) for r in result.recalled],
        weight_version=rt_head,
    )


@router.post(
    "/chat/completions",
    response_model=Completion,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "With `stream`: SSE."}},
)
def chat_completions(
    body: CompletionRequest,
    agent: AgentDep,
    rt: RuntimeDep,
    principal: PrincipalDep,
    x_imprint_thread: Annotated[str | None, Header(description="The conversation thread.")] = None,
) -> Any:
    """One personalised chat turn for `body.user`, in OpenAI's request and response format."""
    user = principal.user(body.user)
    thread = x_imprint_thread or (body.metadata or {}).get("thread_id") or "default"
    text = _turn(body, rt.settings.max_messages_per_request)
    generation = _generation(body, rt.settings.max_tokens_limit)
    agent.check(user, text, thread)  # a bad turn is a 4xx before any byte is streamed
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    model = body.model
    default_max = rt.settings.max_new_tokens
    head = rt.weights.head(user) if rt.weights is not None else 0
    if body.stream:
        events = _in_one_thread(agent.stream(user, text, thread, generation))
        return StreamingResponse(
            _sse(events, completion_id, model, generation, default_max, head),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = agent.chat(user, text, thread, generation)
    return Completion(
        id=completion_id,
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=result.reply),
                finish_reason=_finish_reason(result, generation, default_max),  # type: ignore[arg-type]
            )
        ],
        usage=Usage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            total_tokens=result.prompt_tokens + result.completion_tokens,
        ),
        imprint=_info(head, result),
    )


def _sse(
    events: Iterator[TurnEvent],
    completion_id: str,
    model: str,
    generation: dict[str, Any],
    default_max: int,
    head: int,
) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if event.result is None:
                yield chunk({"content": event.token})
                continue
            result = event.result
            usage = {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
            }
            info = _info(head, result).model_dump()
            yield chunk({}, _finish_reason(result, generation, default_max), usage=usage, imprint=info)
    except Exception as exc:  # the status line is already sent: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
    yield "data: [DONE]\n\n"


@router.get("/models", response_model=ModelList, responses={401: ERRORS[401]})
def models(rt: RuntimeDep, _: PrincipalDep) -> ModelList:
    """The one model this deployment serves (OpenAI clients list models before they chat)."""
    return ModelList(data=[ModelPublic(id=rt.settings.model, created=STARTED)])
