"""A user's weight memory: `GET /v1/users/{id}/edits`, `POST /v1/users/{id}/rollback` and
`GET /v1/users/{id}/adapter` (the memory in force as a peft LoRA adapter, zipped)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import PrincipalDep, RuntimeDep, WeightsDep
from api.schemas.common import BUSY, ERRORS, UserPath
from api.schemas.weights import EditList, EditVersionPublic, RollbackPublic, RollbackRequest
from api.user_lock import user_lock
from memory.weights.export import export_peft

router = APIRouter(prefix="/v1/users", tags=["weights"])


@router.get("/{user_id}/edits", response_model=EditList, responses=ERRORS)
def list_edits(user_id: UserPath, weights: WeightsDep, principal: PrincipalDep) -> EditList:
    """Every version of the user's weight memory, oldest first, with provenance and drift report."""
    user = principal.user(user_id)
    return EditList(
        user_id=user_id,
        head=weights.head(user),
        versions=[EditVersionPublic.of(v) for v in weights.versions(user)],
    )


@router.post("/{user_id}/rollback", response_model=RollbackPublic, responses={**ERRORS, **BUSY})
def rollback(
    user_id: UserPath, body: RollbackRequest, weights: WeightsDep, rt: RuntimeDep, principal: PrincipalDep
) -> RollbackPublic:
    """Put an earlier version back in force (0 = the base model); later versions stay recorded. The
    user's observations follow: those no version in force carries return to retrieval."""
    user = principal.user(user_id)
    with user_lock(rt, user):
        weights.revert(user, body.version)
        reconciled = 0
        if rt.consolidation is not None:
            reconciled = rt.consolidation.consolidator.reconcile(user)
    return RollbackPublic(user_id=user_id, head=weights.head(user), reconciled=reconciled)


@router.get(
    "/{user_id}/adapter",
    responses={**ERRORS, 200: {"content": {"application/zip": {}}, "description": "A peft adapter folder."}},
    response_class=Response,
)
def adapter(
    user_id: UserPath,
    weights: WeightsDep,
    rt: RuntimeDep,
    principal: PrincipalDep,
    unscoped: Annotated[
        bool, Query(description="Export a scoped memory anyway, applied at every token (not as served).")
    ] = False,
) -> Response:
    """The memory in force as a LoRA adapter (`adapter_config.json`, `adapter_model.safetensors`) that
    plain peft loads onto the base model; 404 when the user has no weight memory in force, 422 when it is
    scoped (ROME's `scope` setting, on by default) and `unscoped` is not set: a LoRA adapter applies at every
    token, so its logits would differ from the service's everywhere outside the scope."""
    user = principal.user(user_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_peft(weights, user, Path(tmp) / "adapter", rt.settings.model, unscoped=unscoped)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, path.name)
    name = f"imprint-{user_id}-v{weights.head(user)}.zip"
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
