"""Evaluation of preference extraction on PrefEval: recall on persona conversations, false positives on
filler.

Why these two numbers: an extractor is useful only if it catches the preference a user slips into a long
conversation (recall) without filling memory from turns that carry none (false positives per 100 filler
turns). How a match is decided: a conversation counts as recalled when some candidate extracted from its user
turns has cosine similarity >= `MATCH_THRESHOLD` to the gold preference, taking the better of the candidate's
evidence sentence and its "aspect: likes value" summary. Because a lenient matcher could be satisfied by any
sentence, the report carries two controls computed with the same matcher: one random non-extracted user
sentence per conversation, and as many random user sentences as the extractor emitted for it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from memory.embedder import Embedder
from memory.extraction.base import Extractor
from memory.extraction.sentences import split_sentences
from memory.observations import Candidate

log = logging.getLogger(__name__)

MATCH_THRESHOLD = 0.5  # fixed from the matcher's own distributions before tuning the extractor; see docs
BATCH_TEXTS = 64  # user turns per extractor call: enough to batch embeddings, few enough for a live bar
N_EXAMPLES = 8  # misses and false positives kept in the report for a human to read
SEED = 0  # the controls draw random sentences; fixed so reports are comparable run to run


@dataclass
class PersonaConversation:
    """One PrefEval persona-driven record: the gold preference and the user's turns."""

    topic: str
    preference: str
    user_turns: list[str]


def load_persona(prefeval_dir: Path, limit: int | None = None) -> list[PersonaConversation]:
    """Records of `implicit_preference/persona-driven/*.json`, in file order, at most `limit` of them."""
    folder = prefeval_dir / "implicit_preference" / "persona-driven"
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(
            f"no persona-driven files under {folder}; pass the PrefEval folder as prefeval_dir"
        )
    convs: list[PersonaConversation] = []
    for path in files:
        for rec in json.loads(path.read_text()):
            ordered = sorted(rec["conversation"].items(), key=lambda kv: int(kv[0]))
            turns = [turn["user"] for _, turn in ordered]
            convs.append(PersonaConversation(path.stem, rec["preference"], turns))
    return convs[:limit] if limit is not None else convs


def load_filler(prefeval_dir: Path, limit: int | None = None) -> list[str]:
    """Every user message of `filtered_inter_turns.json`: real chat turns that state no preference."""
    path = prefeval_dir / "filtered_inter_turns.json"
    if not path.exists():
        raise FileNotFoundError(f"no {path}; pass the PrefEval folder as prefeval_dir")
    convs = json.loads(path.read_text())
    turns = [m["content"] for conv in convs for m in conv["conversation"] if m["role"] == "user"]
    return turns[:limit] if limit is not None else turns


def extract_all(extractor: Extractor, texts: list[str], desc: str, progress: bool) -> list[list[Candidate]]:
    """Candidates per text, calling the extractor in batches so it can share embedding calls."""
    out: list[list[Candidate]] = []
    with tqdm(total=len(texts), desc=desc, unit="turn", disable=not progress) as bar:
        for start in range(0, len(texts), BATCH_TEXTS):
            chunk = texts[start : start + BATCH_TEXTS]
            out.extend(extractor.extract_many(chunk))
            bar.update(len(chunk))
    return out


def _best_similarity(embedder: Embedder, gold: np.ndarray, texts_per_conv: list[list[str]]) -> np.ndarray:
    """Per conversation, the highest cosine between its gold vector (row of `gold`) and any of its texts."""
    flat = [t for texts in texts_per_conv for t in texts]
    vecs = embedder.embed(flat)  # (M, D)
    best = np.full(len(texts_per_conv), -1.0, dtype=np.float32)
    pos = 0
    for i, texts in enumerate(texts_per_conv):
        if texts:
            best[i] = float((vecs[pos : pos + len(texts)] @ gold[i]).max())
        pos += len(texts)
    return best


def evaluate_extraction(
    extractor: Extractor,
    embedder: Embedder,
    prefeval_dir: Path,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Recall on persona conversations and false positives per 100 filler turns; see the module docstring.

    `limit` caps both the number of persona conversations and of filler turns (for quick runs and tests).
    """
    started = time.perf_counter()
    prefeval_dir = Path(prefeval_dir)
    convs = load_persona(prefeval_dir, limit)
    filler = load_filler(prefeval_dir, limit)
    log.info("evaluating extraction on %d persona conversations and %d filler turns", len(convs), len(filler))

    turn_owner = [i for i, c in enumerate(convs) for _ in c.user_turns]
    per_turn = extract_all(extractor, [t for c in convs for t in c.user_turns], "persona turns", progress)
    cands: list[list[Candidate]] = [[] for _ in convs]
    for owner, found in zip(turn_owner, per_turn, strict=True):
        cands[owner].extend(found)

    gold = embedder.embed([c.preference for c in convs])  # (N, D)
    cand_texts = [[t for c in cs for t in (c.evidence, c.summary())] for cs in cands]
    best = _best_similarity(embedder, gold, cand_texts)
    matched = best >= MATCH_THRESHOLD

    controls = _controls(embedder, gold, convs, cands)
    filler_found = extract_all(extractor, filler, "filler turns", progress)
    fps = [(turn, c) for turn, found in zip(filler, filler_found, strict=True) for c in found]

    topics: dict[str, list[bool]] = defaultdict(list)
    for conv, ok in zip(convs, matched, strict=True):
        topics[conv.topic].append(bool(ok))
    n = len(convs)
    report: dict[str, Any] = {
        "recall": round(float(matched.mean()) if n else 0.0, 4),
        "n_conversations": n,
        "matched": int(matched.sum()),
        "false_positives": len(fps),
        "filler_user_turns": len(filler),
        "fp_per_100_turns": round(100.0 * len(fps) / max(len(filler), 1), 3),
        "match_threshold": MATCH_THRESHOLD,
        **controls,
        "mean_candidates_per_conversation": round(float(np.mean([len(c) for c in cands])) if n else 0.0, 3),
        "per_topic_recall": {t: round(sum(v) / len(v), 4) for t, v in sorted(topics.items())},
        "extractor": type(extractor).__name__,
        "extractor_threshold": getattr(extractor, "threshold", None),
        "example_misses": _misses(convs, cands, best, matched),
        "example_false_positives": [
            {"turn": turn[:300], "evidence": c.evidence, "summary": c.summary(), "confidence": c.confidence}
            for turn, c in fps[:N_EXAMPLES]
        ],
        "seconds": 0.0,
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    log.info("recall %.3f, %.2f FP per 100 filler turns", report["recall"], report["fp_per_100_turns"])
    return report


def _controls(
    embedder: Embedder, gold: np.ndarray, convs: list[PersonaConversation], cands: list[list[Candidate]]
) -> dict[str, float]:
    """How often random user sentences pass the same matcher: the floor a useless extractor would reach."""
    rng = random.Random(SEED)
    one: list[list[str]] = []
    same_k: list[list[str]] = []
    for conv, cs in zip(convs, cands, strict=True):
        sentences = [s for turn in conv.user_turns for s in split_sentences(turn)]
        extracted = {c.evidence for c in cs}
        rest = [s for s in sentences if s not in extracted]
        one.append([rng.choice(rest)] if rest else [])
        k = min(len(extracted), len(sentences))
        same_k.append(rng.sample(sentences, k))
    one_rate = _best_similarity(embedder, gold, one) >= MATCH_THRESHOLD
    k_rate = _best_similarity(embedder, gold, same_k) >= MATCH_THRESHOLD
    return {
        "control_match_rate": round(float(one_rate.mean()) if len(one) else 0.0, 4),
        "control_same_count_match_rate": round(float(k_rate.mean()) if len(same_k) else 0.0, 4),
    }


def _misses(
    convs: list[PersonaConversation], cands: list[list[Candidate]], best: np.ndarray, matched: np.ndarray
) -> list[dict[str, Any]]:
    """A few unmatched conversations with what was extracted instead, for a human to read."""
    out: list[dict[str, Any]] = []
    for conv, cs, score, ok in zip(convs, cands, best, matched, strict=True):
        if ok:
            continue
        out.append(
            {
                "topic": conv.topic,
                "preference": conv.preference,
                "best_similarity": round(float(score), 3),
                "extracted": [c.summary() for c in cs][:5],
            }
        )
        if len(out) >= N_EXAMPLES:
            break
    return out
