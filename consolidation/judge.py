"""Did an answer state the target? One documented judge used by every edit metric.

A verdict is positive when either
1. **normalised match**: every content word of the target (or of one of its synonyms) occurs in the answer
   as a whole word after lower-casing, stripping quotes and punctuation, and folding plural "s"; whole words
   matter because a small model writes " teal" → "tealess"; or
2. **embedding match**: the cosine similarity between the answer's first sentence and the target (or a
   synonym) is at least `threshold`; this credits paraphrases ("hitting the dance floor" for "dancing at
   clubs"). The threshold is calibrated on hand-labelled answers (`calibrate`), and the value in use is
   reported with every result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "with",
        "my",
        "your",
        "i",
        "you",
        "is",
        "are",
        "be",
        "it",
        "its",
        "this",
        "that",
        "as",
        "by",
        "from",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# fitted on the 308 hand labels of tests/fixtures/judge_labels.jsonl by `imprint eval judge`: agreement
# 0.958, 0.955 cross-validated, against 0.935 for the word match alone (docs/results.md#the-judge)
DEFAULT_THRESHOLD = 0.534


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _fold(word: str) -> str:
    """Crude singular form so "hikes" matches "hike" (not a stemmer: just the plural s)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased, de-punctuated, plural-folded words of `text`."""
    return [_fold(w) for w in _WORD.findall(text.lower().replace("'", ""))]


def content_words(text: str) -> list[str]:
    kept = [w for w in words(text) if w not in STOPWORDS]
    return kept or words(text)


def first_sentence(text: str, max_chars: int = 300) -> str:
    text = text.strip().strip('"').strip()
    return _SENTENCE_END.split(text, maxsplit=1)[0][:max_chars] if text else ""


@dataclass(frozen=True)
class Verdict:
    hit: bool
    how: Literal["normalized", "embedding", "endpoint", "none"]
    similarity: float  # best embedding similarity (0 when not computed)


class AnswerJudge(Protocol):
    """Whether answers state their targets: `TargetJudge` here, or an evaluation's endpoint judge."""

    def judge_many(self, answers: Sequence[str], targets: Sequence[Sequence[str]]) -> list[Verdict]: ...

    def describe(self) -> str: ...


class TargetJudge:
    """Judges whether answers contain a target; see the module docstring for the rule."""

    def __init__(self, embedder: TextEmbedder | None, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def describe(self) -> str:
        return f"TargetJudge (local: normalised match or MiniLM similarity >= {self.threshold})"

    @staticmethod
    def normalized_match(answer: str, targets: Sequence[str]) -> bool:
        have = set(words(answer))
        return any(set(content_words(t)) <= have for t in targets if t.strip())

    def judge(self, answer: str, targets: Sequence[str]) -> Verdict:
        return self.judge_many([answer], [targets])[0]

    def judge_many(self, answers: Sequence[str], targets: Sequence[Sequence[str]]) -> list[Verdict]:
        """Verdicts for answer i against target list i; embeddings are computed in one batch."""
        if len(answers) != len(targets):
            raise ValueError(f"{len(answers)} answers but {len(targets)} target lists")
        sims = self.similarities(answers, targets)
        out = []
        for answer, tgts, sim in zip(answers, targets, sims, strict=True):
            if self.normalized_match(answer, tgts):
                out.append(Verdict(True, "normalized", sim))
            elif sim >= self.threshold:
                out.append(Verdict(True, "embedding", sim))
            else:
                out.append(Verdict(False, "none", sim))
        return out

    def similarities(self, answers: Sequence[str], targets: Sequence[Sequence[str]]) -> list[float]:
        """Best cosine similarity between each answer's first sentence and any of its targets."""
        if self.embedder is None or not answers:
            return [0.0] * len(answers)
        firsts = [first_sentence(a) or " " for a in answers]
        flat = [t for tgts in targets for t in tgts]
        a_vecs = self.embedder.embed(firsts)  # (N, D)
        t_vecs = self.embedder.embed(flat)  # (M, D)
        out, start = [], 0
        for i, tgts in enumerate(targets):
            block = t_vecs[start : start + len(tgts)]
            start += len(tgts)
            out.append(float((block @ a_vecs[i]).max()) if len(tgts) else 0.0)
        return out


def best_threshold(
    similarities: Sequence[float], matched: Sequence[bool], labels: Sequence[bool]
) -> tuple[float, float]:
    """(threshold, agreement) maximising agreement with `labels`, given each answer's similarity and
    whether the word match already says yes. Candidates are the observed similarities themselves (plus
    1.01 = "embedding never decides"), so the result is exact for the labelled set."""
    sims = np.asarray(similarities, dtype=float)
    exact = np.asarray(matched, dtype=bool)
    gold = np.asarray(labels, dtype=bool)
    best_t, best_acc = 1.01, float((exact == gold).mean()) if len(gold) else 0.0
    for t in sorted(set(sims.tolist())):
        acc = float(((exact | (sims >= t)) == gold).mean())
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def calibrate(
    judge: TargetJudge, answers: Sequence[str], targets: Sequence[Sequence[str]], labels: Sequence[bool]
) -> dict[str, float]:
    """Pick the embedding threshold that maximises agreement with hand labels; returns it and the agreement.

    Report it together with the number of labels (`eval.judge_agreement` adds cross-validation).
    """
    sims = judge.similarities(answers, targets)
    exact = [judge.normalized_match(a, t) for a, t in zip(answers, targets, strict=True)]
    threshold, agreement = best_threshold(sims, exact, labels)
    return {"threshold": threshold, "agreement": agreement, "n": float(len(labels))}
