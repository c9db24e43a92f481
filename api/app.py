"""The FastAPI application: heavy objects built in the lifespan, one router per resource, errors as 4xx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes import chat, memories
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from memory.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """An app over `runtime` (tests share one) or over a runtime built from `settings` at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt: Runtime = runtime or build_runtime(settings or Settings())
        app.state.runtime = rt
        scheduled = owned and rt.consolidation is not None and rt.settings.consolidation_interval_minutes > 0
        if scheduled:  # the service runs the periodic consolidation; chats go on meanwhile
            rt.require_consolidation().start(
                rt.settings.jobstore_path, rt.settings.consolidation_interval_minutes
            )
        log.info("imprint ready")
        try:
            yield
        finally:
            if scheduled:
                rt.require_consolidation().shutdown(wait=True)
            if owned:
                rt.close()

    app = FastAPI(title="imprint", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(chat.router)
    app.include_router(memories.router)
    return app
