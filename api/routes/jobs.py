"""Consolidation on demand: `POST /v1/users/{id}/consolidate` queues a run and returns its job;
`GET /v1/jobs/{id}` says how it went (promoted, committed, rejected and why)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ConsolidationDep, PrincipalDep, Unavailable
from api.schemas.common import ERRORS, UNAVAILABLE, RecordPath, UserPath
from api.schemas.jobs import JobPublic

router = APIRouter(prefix="/v1", tags=["consolidation"])


@router.post(
    "/users/{user_id}/consolidate",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ERRORS, **UNAVAILABLE},
)
def consolidate(user_id: UserPath, service: ConsolidationDep, principal: PrincipalDep) -> JobPublic:
    """Queue one consolidation of the user; poll `GET /v1/jobs/{id}` for its outcome."""
    user = principal.user(user_id)
    if not service.running:
        raise Unavailable("the consolidation scheduler is not running in this process")
    run = service.submit(user, trigger="api")
    return JobPublic.of(run, user_id)


@router.get("/jobs/{job_id}", response_model=JobPublic, responses={**ERRORS, **UNAVAILABLE})
def job(job_id: RecordPath, service: ConsolidationDep, principal: PrincipalDep) -> JobPublic:
    run = service.runs.get(job_id)
    principal.check_owns(run.user_id, f"job {job_id!r}")
    return JobPublic.of(run, principal.public(run.user_id))
