"""Sentence and clause splitting for user turns.

Why not a full NLP pipeline: no parser is installed and the extractor only needs to isolate the first-person
statement inside a turn such as "Any tips? I usually avoid crowds, so quiet places are best." Regular
expressions over punctuation and a few conjunctions do that well enough, and code or pasted data (common in
real chat logs) is filtered out up front because it never carries a personal preference.
"""

from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 400  # longer "sentences" are pasted documents, not the user speaking about themself
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# clause boundaries: a comma or semicolon before a conjunction, or the conjunction itself
_CLAUSE_BREAK = re.compile(
    r"\s*(?:;|:|\s-\s|—|,?\s+(?:so|but|since|because|although|though|whereas|and so|which is why)\s+"
    r"|,\s+(?=(?:and|or)?\s*(?:i|i'm|i've|i'd|my|we|we're|our|do|can|could|would|what|how|any)\b))",
    re.IGNORECASE,
)
_CODE_HINTS = re.compile(
    r"[{}<>=\[\]#`|\\]|\b(?:def|class|import|return|function|var|const|select|from)\b\s*\w*\("
)


def looks_like_code(line: str) -> bool:
    """True for lines that are program text or markup: they never state a personal preference."""
    if not line.strip():
        return False
    symbols = sum(ch in "{}[]()<>=;#`|\\/_*$@" for ch in line)
    if line.rstrip().endswith(("{", "}", ";", "):", "=>", "[", "(")):
        return True  # block openers and statement ends
    return symbols / max(len(line), 1) > 0.08 or bool(_CODE_HINTS.search(line) and symbols >= 3)


def split_sentences(text: str) -> list[str]:
    """Split a user turn into sentences, dropping code-like lines and overlong blobs."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or looks_like_code(line):
            continue
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if 3 <= len(piece) <= MAX_SENTENCE_CHARS:
                sentences.append(piece)
    return sentences


def split_clauses(sentence: str) -> list[str]:
    """Split a sentence at conjunctions and punctuation so a request and a preference land apart.

    "I'm vegan, so what should I cook?" gives ["I'm vegan", "what should I cook?"]; the question mark stays
    with the last clause only, which is how `is_request` tells the two apart.
    """
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(sentence)]
    return [p for p in parts if len(p) >= 3]
