"""Turning a clause into the short value phrase of a preference ("quiet places, away from nightlife").

Why the object of the cue: in "I usually prefer land-based activities" what follows the cue verb is what is
preferred. Implicit cues ("I get seasick easily", "I'm vegan") have no object worth keeping, so the clause
without its subject is the value instead.
"""

from __future__ import annotations

import re

from memory.extraction.cues import CueMatch
from memory.observations import Polarity

MAX_VALUE_WORDS = 14  # a value is a phrase for prompts, not a paragraph
_LEADING = re.compile(
    r"^(?:(?:since|because|so|but|and|although|though|as|also|actually|honestly|well|oh|by the way)\b,?\s*)+",
    re.IGNORECASE,
)
# longest first: "I'm vegan" loses "I'm", not just "I"
_SUBJECT = re.compile(r"^(?:i'm|i am|we're|we are|i've|i have|i'd|i would|i|we)\b\s*", re.IGNORECASE)
_OBJECT_LEAD = re.compile(r"^(?:to|of|for|about|with|in|on|doing|that|s)\b\s*", re.IGNORECASE)


def _trim(phrase: str) -> str:
    words = phrase.strip(" .,!;:-\"'").split()
    return " ".join(words[:MAX_VALUE_WORDS])


def value_phrase(clause: str, match: CueMatch) -> str:
    """The value of the preference found by `match` in `clause`."""
    if match.cue.polarity is Polarity.IS:
        # a self-description's cue often holds the value itself ("I have two sons", "I'm 34 years old")
        return _trim(_SUBJECT.sub("", _LEADING.sub("", clause.strip())))
    raw = clause[match.end :].strip(" ,")
    obj = _OBJECT_LEAD.sub("", raw)
    # explicit cues name their object ("prefer X"); implicit ones only after a preposition ("afraid of X")
    if len(obj.split()) >= 2 and (match.cue.explicit or obj != raw):
        return _trim(obj)
    return _trim(_SUBJECT.sub("", _LEADING.sub("", clause.strip())))
