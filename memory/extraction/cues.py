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

# self-descriptions: how many, which relatives and which animals
_NUM = (
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d+|no|many|several|some|lots of|"
    r"a few|twin)"
)
_KIN = (
    r"(?:sons?|daughters?|kids?|child(?:ren)?|bab(?:y|ies)|brothers?|sisters?|siblings?|wife|husband|partner|"
    r"boyfriend|girlfriend|fianc\w*|parents?|twins?|grand\w+|step\w+|cousins?|nephews?|nieces?|"
    r"aunts?|uncles?)"
)
_PET = (
    r"(?:dogs?|cats?|pupp(?:y|ies)|kittens?|pets?|fish|birds?|parrots?|hamsters?|rabbits?|bunn(?:y|ies)|"
    r"horses?|ponies|turtles?|tortoises?|snakes?|lizards?|pigs?|cows?|goats?|chickens?|ferrets?|guinea pigs?)"
)
_RELATIVE = (
    r"(?:mom|mum|mother|dad|father|parents|wife|husband|partner|brothers?|sisters?|sons?|daughters?|kids|"
    r"children|family|grand\w+|aunt|uncle|cousin|boyfriend|girlfriend|best friend)"
)
# "I work on the report", "I run the script": tasks at hand, not who the user is
_TASK_OBJECT = (
    r"(?!\s+(?:it|them|this|that|these|those|into|out|through|over|your)\b)(?!\s+(?:(?:the|a|an|my|our)\s+)?"
    r"(?:\w+\s+)?(?:code|script|program|app|function|query|tests?|command|loop|report|prompt|file|model|docs|"
    r"documentation|article|text|paper|example|answer|output|error|server|job|query|data|dataset|list)\b)"
)
# "I have a question", "I have a list of numbers": what the user brings to the chat, not what they own
_CHAT_OBJECT = (
    r"(?!(?:\w+\s+)?(?:question|problem|issue|error|doubt|query|list|file|dataset|table|function|script|code|"
    r"bug|meeting|deadline|project|task|assignment|presentation|request|idea|follow|quick|couple|few|feeling|"
    r"look|try|chance|go|lot of|hard time|text|paragraph|string|array|number|dataframe|csv)\b)"
)


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


L, A, IS = Polarity.LIKES, Polarity.AVOIDS, Polarity.IS

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
    # self-descriptions: who the user is (work, home, family, age, studies, goals, pastimes)
    _cue(
        "occupation",
        _I + r"\s+(?:(?:currently|also|still|now|mainly)\s+)?(?:work|worked|have worked|have been working|"
        r"am working|'m working)\s+(?:as|at|in|for)\b|\bfor a living\b|\bretired\b|\bmy (?:job|profession|"
        r"occupation|career) (?:is|was|as)\b|"
        r"\b(?:i|we)\s+(?:run|own|manage|operate)\s+(?:a|an|my own|our own)\s+"
        r"(?!function|script|query|test|program|command|loop)|\bi(?:'m| am) (?:self-employed|unemployed|"
        r"employed)\b|"
        r"\bi used to (?:be|work)\b",
        IS,
        0.85,
        True,
    ),
    _cue(
        "home",
        _I + r"\s+(?:(?:currently|now|still|also|just|recently)\s+)?(?:live|lived|grew up|was raised|"
        r"was born|reside|moved)\b|\bi(?:'m| am) (?:originally )?from\b|\bmy (?:home ?town|home town)\b|"
        r"\b(?:i|we)\s+(?:just\s+|recently\s+)?(?:bought|rent|own|am renting|'m renting)\s+(?:a|an|my|our)\s+"
        r"(?:[\w-]+\s+){0,2}(?:house|home|apartment|flat|condo|farm|cabin|ranch|place)\b",
        IS,
        0.85,
        True,
    ),
    _cue(
        "household",
        _I
        + r"\s+(?:have|had|'ve got|have got|own|adopted|rescued)\s+"
        + _NUM
        + r"\s+(?:[\w-]+\s+){0,2}?(?:"
        + _KIN
        + "|"
        + _PET
        + r")\b|\bi(?:'m| am)\s+(?:(?:happily|recently|newly|now|also|still)\s+)?"
        r"(?:married|single|divorced|widowed|engaged|pregnant|adopted|expecting|an only child|a (?:single |"
        r"stay[- ]at[- ]home |working |new |first[- ]time )?(?:mom|mum|mother|dad|father|parent|grand\w+))\b|"
        r"\bbecame an? (?:[\w-]+ ){0,2}(?:mom|mum|mother|dad|father|parent|grand\w+)\b",
        IS,
        0.85,
        True,
    ),
    _cue(
        "relatives",
        r"\bmy\s+(?:(?:older|younger|little|big|twin|late|step|two|three)\s+)?"
        + _RELATIVE
        + r"\b[^.?!]{0,40}?\b(?:is|are|was|were|lives?|lived|works?|worked|used to|passed|taught|"
        r"played|served|got|left|helped|raised)\b|\bboth my parents\b|"
        r"\bi was (?:raised|adopted|brought up)\b",
        IS,
        0.7,
        False,
    ),
    _cue(
        "age",
        r"\b\d+\s*-?\s*years?[- ]old\b|\bi(?:'m| am)\s+(?:almost |nearly |over |about )?\d{1,2}\b(?!\s*(?:%|"
        r"percent|minutes|hours|steps|days|times))|\bin my (?:early |late |mid )?(?:teens|twenties|thirties|"
        r"forties|fifties|sixties|seventies|eighties|\d0s)\b",
        IS,
        0.85,
        True,
    ),
    _cue(
        "studies",
        _I + r"\s+(?:(?:currently|also|now)\s+)?(?:study|studied|am studying|'m studying|attend|attended|"
        r"graduated|majored|major in|go to (?:school|college|university|\w+ school)|went to (?:school|"
        r"college|university|\w+ school))\b|\bi(?:'m| am)\s+(?:a\s+)?(?:[\w-]+\s+)?(?:student|freshman|"
        r"sophomore|undergrad\w*|grad student|graduate)\b|\bi(?:'m| am)\s+in\s+(?:the\s+)?(?:\w+\s+)?"
        r"(?:grade|school|college|university)\b",
        IS,
        0.8,
        True,
    ),
    _cue(
        "goal",
        _I + _ADV + r"\s+(?:want|hope|plan|dream|aspire|intend|wish|would like|'d like|am going|"
        r"'m going)\s+to\s+(?:be|become|work as|retire|move to|live in|study|open (?:a|my)|own (?:a|my)|"
        r"start (?:my own|a business|a family|a company)|have (?:kids|children|a family)|"
        r"buy a (?:house|home|farm))\b|"
        r"\bwhen i grow up\b|\bmy (?:dream|goal|ambition|life goal|plan) (?:is|was)\b|\bmy dream (?:job|car|"
        r"house|home|career)\b|\b(?:someday|one day) i\b",
        IS,
        0.8,
        True,
    ),
    _cue(
        "name",
        r"\bmy name(?:'s| is)\b|\bi(?:'m| am) called\b|\b(?:people|everyone|friends) call me\b",
        IS,
        0.85,
        True,
    ),
    _cue(
        "belongings",
        _I + r"\s+(?:(?:also|now|still)\s+)?(?:drive|own|have|'ve got|have got)\s+(?:a|an|two|three|"
        r"(?:blue|brown|green|grey|gray|hazel|black|blonde?|red|short|long|curly|"
        r"straight)\b)\s+" + _CHAT_OBJECT,
        IS,
        0.6,
        True,
    ),
    _cue(
        "past",
        r"\bi used to\b(?!\s+(?:think|believe|know|use (?:this|that|it)))",
        IS,
        0.7,
        False,
    ),
    _cue(
        "identity",
        r"\bi(?:'m| am)\s+(?:(?:also|now|still|basically|currently|really|very|quite|such)\s+)?(?:a|an)\s+"
        r"(?!(?:bit|lot|little bit|few|couple|beginner|newbie|novice|total|complete|big fan|fan)\b)",
        IS,
        0.7,
        True,
    ),
    _cue(
        "pastime",
        r"\b(?:in|during) my (?:spare|free|leisure|down) ?time\b|\bas a hobby\b|\bmy (?:hobby|hobbies|"
        r"passion|pastime|favou?rite pastime) (?:is|are|include)\b|\bis my (?:hobby|passion|pastime)\b|"
        r"\bwhen i have (?:some )?(?:spare|free) time\b",
        L,
        0.85,
        True,
    ),
    _cue(
        "activity",
        _I + r"\s+(?:(?:also|often|regularly|still|love to|like to|enjoy)\s+)?(?:play|collect|restore|"
        r"sew|knit|crochet|paint|dance|sing|draw|bake|garden|hike|surf|ski|fish|hunt|coach|volunteer|ride|skate|swim|"
        r"jog|run|read|cook|camp|climb|sketch|quilt|golf|bowl|compete|perform|blog|train|practi[cs]e|"
        r"spend my|watch|walk|write|work out|workout|speak|go to (?:church|the gym|mass|temple|synagogue))\b"
        + _TASK_OBJECT
        + r"|\b(?:i'm|i am|i was) on (?:a|the|my) (?:\w+ )?team\b",
        L,
        0.7,
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
    r"make|create|generate|list|explain|help|recommend|suggest|show|find|describe|summari[sz]e|"
    r"translate|rewrite|convert|let's|"
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
