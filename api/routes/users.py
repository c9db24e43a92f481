"""`DELETE /v1/users/{id}`: forget a user entirely."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, RuntimeDep
from api.schemas.common import BUSY, ERRORS, UserPath
from api.schemas.jobs import UserForgotten
from api.user_lock import user_lock

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.delete("/{user_id}", response_model=UserForgotten, responses={**ERRORS, **BUSY})
def forget(user_id: UserPath, rt: RuntimeDep, principal: PrincipalDep) -> UserForgotten:
    """Erase the user's observations and their history, weight-memory versions and files, threads and
    consolidation jobs. Afterwards the user is served by the base model; no other user changes. 409
    while a consolidation of this user runs."""
    user = principal.user(user_id)
    with user_lock(rt, user):
        gone = rt.forget_user(user)
    return UserForgotten(user_id=user_id, **gone)
