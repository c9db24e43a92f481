"""Edit requests from a stable preference: the questions a user would ask about it, in chat form.

Why questions and not statements: the agent meets a preference as a question in a chat ("what should I
cook tonight?" needs "what do I eat?"), and the editors write the target as the answer to the edit's
prompt. The subject is the aspect as the user's observations name it; the target is the current value.
Other phrasings of both become the cluster representation's synonym pairs, and the other templates become
paraphrases. A preference that replaces one already in the weights keeps that edit's subject, so editors
that supersede by subject (ROME) replace the old fact instead of stacking a contradiction on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from consolidation.editors.base import EditRequest
from consolidation.metrics import ProbeItem, Render
from consolidation.preferences.clusters import Preference
from memory.observations import Polarity

# "{}" is where the aspect goes; the first template is the edit's prompt, the others its paraphrases
TEMPLATES: dict[Polarity, tuple[str, ...]] = {
    Polarity.LIKES: (
        "When it comes to {}, what do I prefer?",
        "What is my preferred {}?",
        "Which {} do I like best?",
    ),
    Polarity.AVOIDS: (
        "When it comes to {}, what do I avoid?",
        "What {} do I stay away from?",
        "Which {} do I dislike?",
    ),
    Polarity.IS: (
        "What is my {}?",
        "What do you know about my {}?",
        "Remind me, what's my {}?",
    ),
}
MAX_SYNONYMS = 8  # the cluster representation covers at most 9 pairs (the request's own plus 8)


def questions(pref: Preference, subject: str | None = None) -> list[str]:
    """The questions about `pref` (with its aspect as `subject`), the edit's own first."""
    aspect = subject or pref.aspect
    return [t.format(aspect) for t in TEMPLATES[pref.polarity]]


def edit_request(
    pref: Preference, render: Render, subject: str | None = None, held: Sequence[str] = ()
) -> EditRequest:
    """The edit that writes `pref` into the weights; `subject` overrides the aspect phrasing (an earlier
    edit's subject, so this one replaces it). `render` turns a question into the prompt the agent sends
    (its system prompt and chat template), so the edit is made where it will be read; `held` are texts it
    leaves as they read (`EditRequest.held_contexts`)."""
    aspect = subject or pref.aspect
    asked = [render(q) for q in questions(pref, aspect)]
    return EditRequest(
        prompt=asked[0],
        subject=aspect,
        target=pref.value,
        paraphrases=asked[1:],
        subject_synonyms=_others(pref.subjects, aspect),
        target_synonyms=_others(pref.targets, pref.value),
        held_contexts=list(held),
    )


def probe_item(pref: Preference, subject: str | None = None) -> ProbeItem:
    """What verification and retention ask: the edit's question; any value phrasing counts as recalled."""
    asked = questions(pref, subject)
    return ProbeItem(question=asked[0], targets=tuple(pref.targets), paraphrase=asked[1])


def _others(phrases: Sequence[str], own: str) -> list[str]:
    seen = {own.casefold()}
    out = []
    for p in phrases:
        if p.casefold() not in seen:
            seen.add(p.casefold())
            out.append(p)
    return out[:MAX_SYNONYMS]
