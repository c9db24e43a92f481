"""Linguistic cue lexicons: the phrases by which people reveal what they like, avoid or cannot do.

Why hand-written lexicons: the default language model is too small to emit structured output, and a
preference almost always surfaces through a small set of constructions (a first-person subject plus a
preference, aversion, habit or constraint verb: "I prefer", "I can't stand", "I'm allergic to", "I tend
to", "my kids are vegan"). Each cue carries a polarity, a weight (how sure the phrase alone makes us) and
whether it states the preference outright (explicit) or only implies it (a condition, fear or habit).

The lexicon was written from general knowledge of English, then extended while looking only at aggregate
recall / false-positive numbers of the evaluation (never at the gold preference texts); see
docs/extraction.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memory.observations import Polarity

_I = r"\b(?:i|we)\b"  # first-person subject
_ADV = r"(?:\s+(?:really|absolutely|just|generally|usually|typically|always|definitely|strongly|much|still|"
_ADV += r"actually|personally|totally|honestly|kind of|sort of|also|do|tend to|would|'d|much rather|mostly))*"
_AM = r"\b(?:i'm|i am|we're|we are|i've always been|i have always been|i've been|i was)\b"
_NOT_VERB = r"(?:don't|do not|never|rarely|won't|will not|wouldn't|can't|cannot|try not to|prefer not to)"
# verbs after "I don't" that say nothing about taste ("I don't know", "I don't understand")
_NEUTRAL = (
    r"(?!know|think|understand|see|get\b|remember|mind|want you|need you|care|have (?:a|any|much|the|time)|"
    r"believe|recall|quite|really know|seem|mean|agree|expect|feel like|want to bother|worry)"
)

# "I love that idea", "I like this answer": reactions to the assistant, not lasting tastes
_REACTION = r"(?!\s+(?:to know|you to|the (?:idea|sound|suggestion|tip|way you)|that|this|it|your|"
_REACTION += r"these|those|how)\b)"


@dataclass(frozen=True)
class Cue:
    """One pattern with what a match implies about the clause it occurs in."""

    name: str
    pattern: re.Pattern[str]
    polarity: Polarity
    weight: float  # 0..1: how much the phrase alone says "this is a preference"
    explicit: bool  # states the preference outright rather than implying it


@dataclass(frozen=True)
class CueMatch:
    """The strongest cue found in a clause and where its object starts."""

    cue: Cue
    start: int
    end: int


def _cue(name: str, regex: str, polarity: Polarity, weight: float, explicit: bool) -> Cue:
    return Cue(name, re.compile(regex, re.IGNORECASE), polarity, weight, explicit)


L, A = Polarity.LIKES, Polarity.AVOIDS

CUES: tuple[Cue, ...] = (
    # explicit likes
    _cue("prefer", _I + _ADV + r"\s+(?:prefer|favou?r|opt for|lean towards)\b", L, 0.95, True),
    _cue(
        "prefer-noun",
        r"\bmy (?:preference|favou?rite|go-to)\b|\bi(?:'d| would) (?:much )?rather\b",
        L,
        0.9,
        True,
    ),
    _cue("love", _I + _ADV + r"\s+(?:love|adore|enjoy|appreciate|relish|like)\b" + _REACTION, L, 0.85, True),
    _cue(
        "fan",
        _AM + _ADV + r"\s+(?:a (?:big |huge |real )?fan of|into|passionate about|drawn to|partial to|"
        r"fond of|keen on|crazy about|obsessed with|a sucker for|all about)",
        L,
        0.9,
        True,
    ),
    _cue("only", _I + _ADV + r"\s+only\s+(?!have|need|want|know|got)\w+", L, 0.8, True),
    _cue(
        "habit",
        _I + r"\s+(?:always|usually|typically|generally|mostly|tend to|often|normally|like to)\s+"
        r"(?:go for|choose|pick|stick (?:to|with)|look for|seek out|opt|go with|gravitate|buy|wear|eat|"
        r"book|travel|listen|watch|read|play|use|make sure|try to|bring|take|find myself)",
        L,
        0.75,
        False,
    ),
    _cue(
        "important",
        r"\b(?:is|are) (?:very |really |super |so |extremely )?(?:important|essential|crucial|"
        r"a must|non-negotiable|a priority|key) (?:to|for) (?:me|us)\b|\bmatters? (?:most |a lot )?to me\b|"
        r"\bmy (?:top |main |first )?priority\b|\bi (?:value|care (?:a lot )?about|insist on|need|require) "
        r"(?!help|some|a few|advice|ideas|tips|suggestions|to know|you|your|more info)",
        L,
        0.7,
        True,
    ),
    _cue(
        "works-for-me",
        r"\b(?:works|suits) (?:best|better|well) for me\b|\bi (?:learn|work|sleep|focus|"
        r"thrive|do) (?:best|better|well)\b|\bi (?:find|feel) (?:it )?(?:easier|more comfortable|better)\b|"
        r"\bi(?:'m| am) (?:more of an?|a morning|a night|an? \w+ person)\b",
        L,
        0.75,
        False,
    ),
    # explicit aversions
    _cue("hate", _I + _ADV + r"\s+(?:hate|dislike|detest|loathe|despise|resent)\b", A, 0.95, True),
    _cue("cant-bear", r"\b(?:can't|cannot|can not|couldn't) (?:stand|bear|tolerate|stomach)\b", A, 0.9, True),
    _cue(
        "cant-stand",
        _I + _ADV + r"\s+(?:can't|cannot|can not|couldn't) (?:stand|bear|tolerate|handle|"
        r"deal with|do|eat|drink|have|stomach|sit through|be around)\b",
        A,
        0.9,
        True,
    ),
    _cue(
        "avoid",
        r"\b(?:i|we)\b[^.?!]{0,25}\b(?:avoid|steer clear|stay away|keep away|shy away|refuse|"
        r"swore off|gave up|give up|cut out|quit)\w*\b",
        A,
        0.9,
        True,
    ),
    _cue(
        "dont",
        _I + _ADV + r"\s+" + _NOT_VERB + _ADV + r"\s+" + _NEUTRAL + r"(?:like|enjoy|eat|drink|"
        r"use|wear|watch|listen|fly|travel|buy|own|go|do|want|play|read|trust|support|take|ride|drive|"
        r"book|stay|feel comfortable|get along|care for|fancy|touch|allow|participate|shop|consume|"
        r"believe in|own|have time for)\b",
        A,
        0.85,
        True,
    ),
    _cue(
        "not-fan",
        _AM + _ADV + r"\s+not\s+(?:a (?:big |huge )?fan|into|keen|fond|interested|"
        r"comfortable|crazy about|a \w+ person|big on|one for)\b|\b(?:isn't|aren't|is not|are not) "
        r"(?:really )?(?:for me|my thing|my cup of tea|my style)\b|\bnot my (?:thing|style|cup of tea)\b|"
        r"\bno (?:interest|desire|patience) (?:in|for)\b|\bturns? me off\b|\bdeal[- ]?breaker\b|"
        r"\bnot interested in\b",
        A,
        0.9,
        True,
    ),
    _cue(
        "against",
        _AM + r"\s+(?:against|opposed to|wary of|skeptical of|tired of|sick of|done with)\b",
        A,
        0.8,
        True,
    ),
    # implicit: conditions, diets, fears, reactions
    _cue(
        "allergy",
        r"\b(?:allerg\w+|intoleran\w+|celiac|coeliac|sensitiv(?:e|ity) to|diabet\w+|"
        r"lactose|gluten|can't digest|asthma\w*|migraines?|bad (?:knee|back|hip)s?|"
        r"chronic \w+|arthritis|injur\w+|condition)\b",
        A,
        0.8,
        False,
    ),
    _cue(
        "diet",
        r"\b(?:vegan|vegetarian|pescatarian|plant-based|kosher|halal|keto|paleo|teetotal\w*|sober|"
        r"don't drink|dairy-free|gluten-free|sugar-free|low-carb|low-sodium|organic)\b",
        A,
        0.75,
        False,
    ),
    _cue(
        "fear",
        r"\b(?:afraid of|fear of|scared of|terrified of|frightened of|phobi\w+|aversion|"
        r"claustrophobic|anxious about|nervous about|anxiety|fear (?:heights|flying|water)|"
        r"makes? me (?:nervous|anxious|uneasy|sick|nauseous|uncomfortable|dizzy))\b",
        A,
        0.85,
        False,
    ),
    _cue(
        "sick",
        r"\b(?:seasick|carsick|airsick|motion sickness|get sick|gets sick|nauseous|"
        r"get (?:easily )?(?:overwhelmed|bored|cold|tired|dizzy|anxious|sunburn\w*)|overstimulat\w+|"
        r"uncomfortable|bothers? me|drains? me|exhausting|overwhelming|too (?:loud|crowded|noisy|spicy|"
        r"expensive|hot|cold))\b",
        A,
        0.75,
        False,
    ),
    _cue(
        "difficult",
        _I + r"\s+(?:find it|struggle|have trouble|have a hard time|get distracted|"
        r"lose (?:interest|focus))\b|\b(?:hard|difficult|tough) for me\b",
        A,
        0.7,
        False,
    ),
    _cue(
        "reasons",
        r"\b(?:due to|because of|out of|for) (?:my |our )?(?:\w+ )?(?:concerns?|reasons|"
        r"beliefs|values|convictions|principles)\b|\bi(?:'m| am) (?:very |quite )?(?:conscious|mindful|"
        r"particular|picky|careful) (?:of|about)\b",
        A,
        0.7,
        False,
    ),
    _cue(
        "family",
        r"\bmy (?:kids|children|son|daughter|wife|husband|partner|family|parents|mother|father|"
        r"dog|cat|pets?)\b[^.?!]{0,30}\b(?:is|are|has|have|can't|don't|won't|love|loves|hate|hates|"
        r"prefer|prefers|need|needs)\b",
        L,
        0.55,
        False,
    ),
    _cue(
        "habit-weak",
        _I + r"\s+(?:always|usually|typically|tend to|often|normally|mostly|never)\b",
        L,
        0.55,
        False,
    ),
)

_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|our|us)\b", re.IGNORECASE)
_REQUEST_START = re.compile(
    r"^(?:\W*)(?:(?:so|and|but|also|ok|okay|now|then|please|hey|hi),?\s+)*(?:(?:can|could|would|will|do|does|"
    r"did|is|are)(?!['’]t|n't| not)|what|which|how|why|where|when|who|should|any|please|write|give|tell|"
    r"make|create|generate|list|explain|help|recommend|suggest|show|find|describe|summari[sz]e|translate|rewrite|convert|let's|"
    r"i (?:need|want|would like|'d like) you|i(?:'d| would) like (?:to know|some|a|an|you|help)|"
    r"i'm (?:looking|searching) for|i am (?:looking|searching) for|i was wondering|i wonder)\b",
    re.IGNORECASE,
)
_ASSISTANT_TASK = re.compile(
    r"\b(?:you|your)\b[^.?!]{0,40}\b(?:write|code|answer|respond|reply|explain|use|format|output|list)\b",
    re.IGNORECASE,
)


def has_first_person(clause: str) -> bool:
    """True when the clause talks about the speaker or their household."""
    return bool(_FIRST_PERSON.search(clause))


def is_request(clause: str) -> bool:
    """True for questions and instructions to the assistant: those ask for something, they reveal nothing."""
    text = clause.strip()
    return text.endswith("?") or bool(_REQUEST_START.match(text)) or bool(_ASSISTANT_TASK.search(text))


def find_cue(clause: str) -> CueMatch | None:
    """The highest-weight cue in `clause`, or None; ties go to the earliest cue in the lexicon."""
    best: CueMatch | None = None
    for cue in CUES:
        m = cue.pattern.search(clause)
        if m and (best is None or cue.weight > best.cue.weight):
            best = CueMatch(cue, m.start(), m.end())
    return best
