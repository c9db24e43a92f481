"""The FastAPI application: heavy objects built in the lifespan, one router per resource, errors as 4xx
with a one-line `detail` (never a 5xx for bad input)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import Unauthorized, Unavailable
from api.metrics import CONTENT_TYPE, Metrics
from api.routes import chat, completions, jobs, memories, users, weights
from api.runtime import Runtime, build_runtime
from api.schemas.common import error_body
from api.settings import Settings
from consolidation.scheduler import UserBusy
from memory.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
BODY_SLACK = 64_000  # JSON framing around the allowed messages


def _validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's error list as one line: where, and what was wrong."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _errors(app: FastAPI) -> None:
    def handler(status: int, headers: dict[str, str] | None = None) -> Callable[..., Awaitable[JSONResponse]]:
        async def respond(_: Request, exc: Exception) -> JSONResponse:
            detail = _validation_detail(exc) if isinstance(exc, RequestValidationError) else str(exc)
            return JSONResponse(status_code=status, content=error_body(status, detail), headers=headers)

        return respond

    app.add_exception_handler(RequestValidationError, handler(422))
    app.add_exception_handler(InvalidInput, handler(422))
    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Unauthorized, handler(401, {"WWW-Authenticate": "Bearer"}))
    app.add_exception_handler(UserBusy, handler(409))
    app.add_exception_handler(Unavailable, handler(503))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """An app over `runtime` (tests share one) or over a runtime built from `settings` at start-up."""
    limits = runtime.settings if runtime is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt: Runtime = runtime or build_runtime(settings or Settings())
        app.state.runtime = rt
        scheduled = owned and rt.consolidation is not None
        if scheduled:  # periodic consolidation (if an interval is set) and on-demand jobs; chats go on
            rt.require_consolidation().start(
                rt.settings.jobstore_path, rt.settings.consolidation_interval_minutes
            )
        log.info("imprint ready (auth %s)", "on" if rt.settings.auth else "OFF: one local user space")
        try:
            yield
        finally:
            if scheduled:
                rt.require_consolidation().shutdown(wait=True)
            if owned:
                rt.close()

    app = FastAPI(
        title="imprint",
        version="0.1.0",
        description="A chat agent whose memory learns: retrieval memory and per-user weight edits.",
        lifespan=lifespan,
    )
    _errors(app)
    metrics = Metrics(lambda: getattr(app.state, "runtime", None))
    max_body = limits.max_message_chars * 4 * limits.max_messages_per_request + BODY_SLACK

    @app.middleware("http")
    async def limit_and_measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse(
                status_code=413,
                content=error_body(413, f"request body over {max_body} bytes; send fewer messages"),
            )
        return await metrics.middleware(request, call_next)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics", tags=["ops"], response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}}
    )
    def prometheus() -> Response:
        """Prometheus text format: requests, latency, consolidation runs, edits, drift verdicts."""
        return metrics.render()

    for module in (completions, chat, memories, weights, jobs, users):
        app.include_router(module.router)
    return app
