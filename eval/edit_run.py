"""Sequential edits for one user, then every record re-scored on the final weight memory.

This is what `imprint edit` and `imprint bench edit` run. Each edit is computed with the user's earlier
edits active (that is what "sequential" means for a served user), committed as a new version, and only after
the last one are all records scored, so early edits that later ones overwrote show up as misses.
"""

from __future__ import annotations

import logging
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import torch
from tqdm import tqdm

from consolidation.editors.base import Editor
from consolidation.judge import TargetJudge
from consolidation.metrics import edit_scores, locality, next_token_logprobs
from eval.upqa import UpqaRecord, edit_request, probe_item
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

ISOLATION_USER = "isolation-probe"  # never edited: must see the base model bit for bit


def _settings_of(editor: Editor) -> dict[str, Any]:
    cfg = getattr(editor, "config", None)
    if cfg is not None and is_dataclass(cfg) and not isinstance(cfg, type):
        return {
            k: (str(v) if not isinstance(v, int | float | str | bool | None) else v)
            for k, v in asdict(cfg).items()
        }
    return {}


def run_sequential_edits(
    model: Any,
    tokenizer: Any,
    weights: WeightMemory,
    user_id: str,
    editor: Editor,
    records: Sequence[UpqaRecord],
    judge: TargetJudge,
    neutral: Sequence[str],
    progress: bool = True,
) -> dict[str, Any]:
    """Edit `records` one by one into `user_id`'s weight memory; return per-record and summary metrics."""
    base_lp = next_token_logprobs(model, tokenizer, neutral)  # no user active: the base model
    settings = _settings_of(editor)
    seconds: list[float] = []
    versions: list[int] = []
    for rec in tqdm(records, desc=f"{editor.name} edits", unit="edit", disable=not progress):
        request = edit_request(rec, tokenizer)
        started = time.perf_counter()
        with weights.applied(user_id):
            delta = editor.compute_delta(model, tokenizer, [request])
        took = time.perf_counter() - started
        info = weights.commit(
            user_id,
            delta,
            editor=editor.name,
            settings=settings,
            requests=[
                {"record": rec.index, "subject": rec.subject, "target": rec.target, "question": rec.question}
            ],
            metrics={},
            seconds=took,
        )
        seconds.append(took)
        versions.append(info.version)

    with weights.applied(user_id):
        scores = edit_scores(model, tokenizer, judge, [probe_item(r) for r in records])
        loc = locality(base_lp, next_token_logprobs(model, tokenizer, neutral))
    with weights.applied(ISOLATION_USER):
        isolated = bool(torch.equal(base_lp, next_token_logprobs(model, tokenizer, neutral)))

    per_record = [
        {
            "record": r.index,
            "subject": r.subject,
            "target": r.target,
            "version": v,
            "seconds": round(s, 3),
            **m,
        }
        for r, v, s, m in zip(records, versions, seconds, scores["per_item"], strict=True)
    ]
    summary = {
        "editor": editor.name,
        "settings": settings,
        "edits": len(records),
        "efficacy": scores.get("efficacy"),
        "paraphrase": scores.get("paraphrase"),
        "implicit": scores.get("implicit"),
        **loc,
        "isolation_bit_identical": isolated,
        "median_seconds_per_edit": statistics.median(seconds) if seconds else None,
        "total_seconds": round(sum(seconds), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "judge_threshold": judge.threshold,
        "neutral_prompts": len(neutral),
    }
    log.info(
        "%s: efficacy %.2f, paraphrase %.2f, implicit %.2f, locality %.2f after %d edits",
        editor.name,
        summary["efficacy"] or 0,
        summary["paraphrase"] or 0,
        summary["implicit"] or 0,
        summary["locality"],
        len(records),
    )
    return {"summary": summary, "records": per_record}
