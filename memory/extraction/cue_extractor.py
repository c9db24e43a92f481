"""The default extractor: linguistic cues find candidate clauses, embeddings confirm and name them.

Why two signals: cues are precise about *form* (a first-person preference, aversion or constraint) but blind
to context ("I love it, now make it shorter"); the embedding margin between prototype preference statements
and prototype tasks judges *content*. A clause becomes a candidate when the blend of both clears
`threshold`. No language model is needed, so it runs on every turn at the cost of one batched embedding call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.embedder import Embedder
from memory.extraction.aspects import AspectNamer
from memory.extraction.base import Extractor
from memory.extraction.cues import CueMatch, find_cue, has_first_person, is_request
from memory.extraction.prototypes import PREFERENCE_PROTOTYPES, TASK_PROTOTYPES
from memory.extraction.sentences import split_clauses, split_sentences
from memory.extraction.values import value_phrase
from memory.observations import Candidate

log = logging.getLogger(__name__)

CUE_SHARE = 0.6  # cues decide most of the score: they are the more precise signal on short clauses
MARGIN_SCALE = 0.25  # an embedding margin of +/-0.25 maps to the ends of the 0..1 embedding score


@dataclass(frozen=True)
class _Hit:
    """A clause that passed the cheap filters and waits for the embedding check."""

    text_index: int
    sentence: str
    clause: str
    match: CueMatch


class CueExtractor(Extractor):
    """Cue-and-embedding preference extractor; see the module docstring for why it blends the two."""

    def __init__(self, embedder: Embedder, threshold: float = 0.55) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self._pref = embedder.embed(list(PREFERENCE_PROTOTYPES))  # (P, D)
        self._task = embedder.embed(list(TASK_PROTOTYPES))  # (T, D)
        self._aspects = AspectNamer(embedder)

    def extract(self, text: str) -> list[Candidate]:
        """Candidates in one user turn."""
        return self.extract_many([text])[0]

    def extract_many(self, texts: Sequence[str]) -> list[list[Candidate]]:
        """Candidates for each text, embedding every surviving clause of every text in one batch."""
        hits = [hit for i, text in enumerate(texts) for hit in self._cue_hits(i, text)]
        out: list[list[Candidate]] = [[] for _ in texts]
        if not hits:
            return out
        vectors = self.embedder.embed([h.clause for h in hits])  # (H, D)
        scores = self.embedding_scores(vectors)  # (H,)
        aspects = self._aspects.name(vectors)
        for hit, emb_score, aspect in zip(hits, scores, aspects, strict=True):
            confidence = CUE_SHARE * hit.match.cue.weight + (1 - CUE_SHARE) * float(emb_score)
            if confidence < self.threshold:
                log.debug("rejected %.2f: %s", confidence, hit.clause)
                continue
            out[hit.text_index].append(
                Candidate(
                    evidence=hit.sentence,
                    aspect=aspect,
                    value=value_phrase(hit.clause, hit.match),
                    polarity=hit.match.cue.polarity,
                    confidence=round(confidence, 3),
                    explicit=hit.match.cue.explicit,
                )
            )
        return out

    def embedding_scores(self, vectors: np.ndarray) -> np.ndarray:
        """0..1 per row: how much more a clause resembles a preference statement than a task."""
        margin = (vectors @ self._pref.T).max(axis=1) - (vectors @ self._task.T).max(axis=1)  # (N,)
        return np.clip(0.5 + margin / (2 * MARGIN_SCALE), 0.0, 1.0)

    @staticmethod
    def _cue_hits(text_index: int, text: str) -> list[_Hit]:
        """Clauses with a preference cue, spoken in the first person, that are not requests."""
        hits: list[_Hit] = []
        for sentence in split_sentences(text):
            if not has_first_person(sentence):
                continue
            for clause in split_clauses(sentence):
                if is_request(clause):
                    continue
                match = find_cue(clause)
                if match is not None:
                    hits.append(_Hit(text_index, sentence, clause, match))
        return hits
