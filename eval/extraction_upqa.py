"""Extraction on UPQA statements: does the user's one sentence about themself become a stored observation?

Why this beside the PrefEval numbers: PrefEval's persona conversations hide one *preference* in a long
exchange, while UPQA's `input_attribute` is a single sentence that mostly says who the user is ("I work as
an attorney", "I have two sons", "I grew up in Ohio"). Retrieval can only recall what extraction stored,
so this share caps the `rag` and `hybrid` methods of `imprint eval upqa` on every record. Two rates per
attribute type: `stored` (at least one observation) and `value_names_target` (some observation's value
phrase contains the record's target by the project's `TargetJudge`, i.e. what a consolidated edit would
write is the fact UPQA asks about).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from consolidation.judge import TargetJudge
from eval.extraction import N_EXAMPLES, extract_all
from eval.upqa import UpqaRecord, load_upqa
from memory.extraction.base import Extractor
from memory.observations import Candidate

log = logging.getLogger(__name__)


def evaluate_upqa_statements(
    extractor: Extractor, judge: TargetJudge, data: Path, limit: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Stored and value-names-target rates over the statements of a UPQA-format file; see the docstring."""
    records = [r for r in load_upqa(data, limit) if r.statement]
    if not records:
        return {"data": str(data), "statements": 0}
    found = extract_all(extractor, [r.statement or "" for r in records], f"UPQA {data.name}", progress)
    named = _names_target(judge, records, found)

    by_type: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    aspects: dict[str, Counter[str]] = defaultdict(Counter)
    for rec, cands, hit in zip(records, found, named, strict=True):
        by_type[rec.subject].append((bool(cands), hit))
        aspects[rec.subject].update(c.aspect for c in cands[:1])
    n = len(records)
    stored = sum(bool(c) for c in found)
    report: dict[str, Any] = {
        "data": str(data),
        "statements": n,
        "stored": round(stored / n, 4),
        "stored_count": stored,
        "value_names_target": round(sum(named) / n, 4),
        "value_names_target_count": sum(named),
        "per_attribute_type": {
            t: {
                "statements": len(v),
                "stored": round(sum(s for s, _ in v) / len(v), 4),
                "value_names_target": round(sum(h for _, h in v) / len(v), 4),
                "aspects": dict(aspects[t].most_common(3)),
            }
            for t, v in sorted(by_type.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        },
        "example_misses": [r.statement for r, c in zip(records, found, strict=True) if not c][:N_EXAMPLES],
        "judge": judge.describe(),
    }
    log.info("UPQA %s: %d of %d statements stored, %d name the target", data.name, stored, n, sum(named))
    return report


def _names_target(judge: TargetJudge, records: list[UpqaRecord], found: list[list[Candidate]]) -> list[bool]:
    """Per record: whether any candidate's value phrase contains one of the record's targets."""
    owners = [i for i, cands in enumerate(found) for _ in cands]
    values = [c.value for cands in found for c in cands]
    verdicts = judge.judge_many(values, [records[i].targets for i in owners]) if values else []
    hit = [False] * len(records)
    for owner, verdict in zip(owners, verdicts, strict=True):
        hit[owner] = hit[owner] or verdict.hit
    return hit
