"""The editor plug-in contract: what every weight editor (ROME, LoRA, FT-M, ...) takes and returns.

Editors compute; they do not apply. An editor returns a `Delta` and leaves the model exactly as it found it,
so the weight memory alone decides what is applied, stacked, saved and reverted (Invariant 2).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from torch import nn

from memory.errors import InvalidInput
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier

SUBJECT_SLOT = "{}"


@dataclass(frozen=True)
class EditRequest:
    """One fact to write into the weights: `prompt` about `subject` should be answered with `target`.

    `prompt` is either a template with one "{}" where the subject goes ("The user's {} is") or the full
    prompt in which `subject` occurs ("The user's favorite cuisine is"); it may be chat-formatted text.
    `target` is the continuation; it is joined to the prompt with a single space unless either side already
    has whitespace at the seam (raw prompts want " Ethiopian", chat prompts end with a newline).
    Synonyms feed the cluster representation (several subject/target pairs per fact).
    """

    prompt: str
    subject: str
    target: str
    paraphrases: list[str] = field(default_factory=list)
    subject_synonyms: list[str] = field(default_factory=list)
    target_synonyms: list[str] = field(default_factory=list)
    # texts, rendered as the model reads them, that the edit should leave as they were read before it: the
    # user's own words as recall puts them in the system prompt, which every turn of a hybrid memory shows
    # beside the weights. Editors that can hold inputs in place (ROME's joint solve) hold every token of them
    held_contexts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("prompt", "subject", "target"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"EditRequest.{name} must be a non-empty string, got {value!r}")
        slots = self.prompt.count(SUBJECT_SLOT)
        if slots > 1:
            raise InvalidInput(f"EditRequest.prompt has {slots} '{{}}' slots; use one: {self.prompt!r}")
        if slots == 0 and self.subject not in self.prompt:
            raise InvalidInput(
                f"subject {self.subject!r} does not occur in prompt {self.prompt!r}; "
                "put it in the prompt or write the prompt as a template with '{}'"
            )
        for name in ("paraphrases", "subject_synonyms", "target_synonyms", "held_contexts"):
            values = getattr(self, name)
            if any(not isinstance(v, str) or not v.strip() for v in values):
                raise InvalidInput(f"EditRequest.{name} must hold non-empty strings, got {values!r}")

    @property
    def template(self) -> str:
        """The prompt with "{}" at the subject (its last occurrence, when the prompt was given filled)."""
        if SUBJECT_SLOT in self.prompt:
            return self.prompt
        head, _, tail = self.prompt.rpartition(self.subject)
        return head + SUBJECT_SLOT + tail

    @property
    def filled_prompt(self) -> str:
        """The prompt with the subject in place."""
        return self.template.replace(SUBJECT_SLOT, self.subject)

    def subject_span(self) -> tuple[int, int]:
        """Character span [start, end) of the subject inside `filled_prompt`."""
        start = self.template.index(SUBJECT_SLOT)
        return start, start + len(self.subject)

    def with_pair(self, subject: str, target: str) -> EditRequest:
        """The same template about another subject/target pair (no synonyms: pairs do not recurse)."""
        return EditRequest(prompt=self.template, subject=subject, target=target)


def join_target(prompt: str, target: str) -> str:
    """Prompt followed by target, one space at the seam unless either side already has whitespace there.
    Why shared: every editor must train and check the target as the same text the model will continue."""
    seam = "" if prompt[-1:].isspace() or target[:1].isspace() else " "
    return prompt + seam + target


def subject_key(subject: str) -> str:
    """What makes two requests about the same subject: case and spacing do not count."""
    return " ".join(subject.split()).casefold()


def live_requests(history: Sequence[EditRequest], requests: Sequence[EditRequest]) -> list[EditRequest]:
    """The latest request per subject over `history` then `requests`, in the order they were made: what a
    user holds now, a later value about a subject having replaced the earlier one."""
    latest: dict[str, EditRequest] = {}
    for request in [*history, *requests]:
        key = subject_key(request.subject)
        latest.pop(key, None)  # re-inserted at the end: order is that of the latest statement
        latest[key] = request
    return list(latest.values())


def check_requests(requests: Sequence[object]) -> list[EditRequest]:
    """The requests as a list, or `InvalidInput` naming the first item that is not an `EditRequest`."""
    for i, request in enumerate(requests):
        if not isinstance(request, EditRequest):
            raise InvalidInput(
                f"request {i} is a {type(request).__name__}, expected EditRequest: {request!r}"
            )
    return list(requests)  # type: ignore[arg-type]


def cluster_pairs(
    request: EditRequest, cluster_size: int, blocked: Collection[str] = frozenset()
) -> list[EditRequest]:
    """The request plus up to `cluster_size` − 1 synonym pairs on its template.

    Pair i (i = 0, 1, ...) takes the i-th subject synonym and the i-th target synonym, cycling the shorter
    list and falling back to the original subject/target when a list is empty; duplicates of pairs already
    chosen are skipped. So synonyms are used evenly and the first ones (the caller's best) come first.
    Subject synonyms whose `subject_key` is in `blocked` are skipped too (`claimed_pairs` says why).
    """
    chosen = [request]
    subjects, targets = request.subject_synonyms, request.target_synonyms
    if cluster_size <= 1 or not (subjects or targets):
        return chosen
    seen = {(request.subject, request.target)}
    for i in range(max(len(subjects), len(targets))):
        if len(chosen) >= cluster_size:
            break
        pair = (
            subjects[i % len(subjects)] if subjects else request.subject,
            targets[i % len(targets)] if targets else request.target,
        )
        if pair not in seen and subject_key(pair[0]) not in blocked:
            seen.add(pair)
            chosen.append(request.with_pair(*pair))
    return chosen


def claimed_pairs(
    requests: Sequence[EditRequest], cluster_size: int, taken: Collection[str] = frozenset()
) -> list[list[EditRequest]]:
    """Each request's `cluster_pairs`, with no subject written for two facts.

    Synonym lists of related facts overlap (UPQA's *job* lists "profession" and "occupation"; its
    *profession* lists "occupation" and "job"). Written as they come, the *job* pair about "profession"
    would overwrite what the user said about their profession. So a synonym never takes a subject that
    is another request's own subject, or one in `taken` (subject keys that other live facts hold); and a
    synonym two requests share goes to the later one, as a later statement replaces an earlier one.
    A request's own subject is always its own.
    """
    primaries = {subject_key(r.subject) for r in requests} | set(taken)
    used: set[str] = set()
    out: list[list[EditRequest]] = [[] for _ in requests]
    for i in reversed(range(len(requests))):  # the latest request picks its synonyms first
        own = subject_key(requests[i].subject)
        pairs = cluster_pairs(requests[i], cluster_size, (primaries | used) - {own})
        used |= {subject_key(p.subject) for p in pairs[1:]}
        out[i] = pairs
    return out


class Editor(ABC):
    """Computes a weight delta that writes `requests` into a causal LM.

    Contract every implementation keeps (the contract test suite checks it for each registered editor):
    - it RETURNS a `Delta` (empty for no requests) and never applies it;
    - the model leaves `compute_delta` bit-identical to how it entered: no parameter written, no `.grad`
      left behind, no `requires_grad` flag changed, no hook left installed, train/eval mode unchanged;
    - it may be called while the user's earlier delta is active through forward hooks, so it must read the
      current behaviour of a module by calling it, never from `module.weight` alone;
    - malformed input raises `memory.errors.InvalidInput`.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type]
    # config fields that act only on the user's earlier edits (a user with one edit is written the same
    # whatever they are): an evaluation that gives each user one edit leaves them out of its plan
    history_settings: ClassVar[frozenset[str]] = frozenset()
    # config fields added after results were recorded: field -> (the value at which the editor edits as it
    # did before the field existed, the fields that act only through it). At that value a results plan
    # leaves the group out, so a folder written before the field existed still resumes
    added_settings: ClassVar[Mapping[str, tuple[Any, frozenset[str]]]] = MappingProxyType({})

    def __init__(self, config: Any = None) -> None:
        config = self.config_cls() if config is None else config  # None: the config's own defaults
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(config)}")
        self.config = config
        self._last = threading.local()  # what this thread's latest `compute_memory` call did

    @property
    def refitted(self) -> list[str]:
        """Subjects of the earlier facts that this thread's latest `compute_memory` call wrote again, beyond
        the requests it was given (ROME's `refit_lost`); [] for an editor that never does. Why: the ledger
        row of that version records them, so a user's provenance says which old preferences an edit
        touched. Per thread, because the consolidator edits several users at once with one editor."""
        return list(getattr(self._last, "refitted", []))

    def _note_refitted(self, subjects: Sequence[str]) -> None:
        self._last.refitted = [*getattr(self._last, "refitted", []), *subjects]

    def settings(self) -> dict[str, Any]:
        """The config as JSON scalars (paths as strings): what a ledger row or a report records."""
        if not is_dataclass(self.config) or isinstance(self.config, type):
            return {}
        return {
            k: (v if isinstance(v, int | float | str | bool | None) else str(v))
            for k, v in asdict(self.config).items()
        }

    def compute_delta(self, model: nn.Module, tokenizer: Any, requests: Sequence[EditRequest]) -> Delta:
        """The delta that makes `model` answer every request's prompt with its target (in order).

        Checks the requests once for every editor (`InvalidInput` on anything else), and answers an empty
        list with an empty delta, so implementations only compute.
        """
        checked = check_requests(requests)
        return self._compute_delta(model, tokenizer, checked) if checked else Delta()

    def compute_memory(
        self,
        model: nn.Module,
        tokenizer: Any,
        requests: Sequence[EditRequest],
        current: Delta,
        history: Sequence[EditRequest] = (),
    ) -> Delta:
        """The user's whole new memory: `current` (their memory in force) with `requests` written in.

        This is what a served user's edit is: computed with `current` active, so the editor sees what the
        user sees now. By default the new updates are stacked on `current` (its updates come first, as the
        same objects, so `WeightMemory.commit(..., whole=True)` stores only the increment). Editors that can
        do better override `_compute_memory`: ROME replaces a subject's earlier update and keeps every other
        subject's key mapped to what it maps to now; LoRA and FT-M re-fit one adapter on every live request.

        `history` is the requests already written into `current`, oldest first. Only editors that re-fit
        the whole memory read it (they cannot recover the facts from their own factors, as ROME can).
        """
        self._last.refitted = []
        checked = check_requests(requests)
        if not checked:
            return current
        earlier = check_requests(history)
        with DeltaApplier(model).activate(current):
            return self._compute_memory(model, tokenizer, checked, current, earlier)

    def memory_diagnostics(self, model: nn.Module, tokenizer: Any, memory: Delta) -> dict[str, float]:
        """Figures about a memory's own structure that its answers do not show (ROME: its live keys and
        the drift at the tokens it holds in place); {} for an editor with none. `imprint eval stability`
        records them at every checkpoint, so a researcher sees the structure change as edits accumulate."""
        return {}

    def _compute_memory(
        self,
        model: nn.Module,
        tokenizer: Any,
        requests: list[EditRequest],
        current: Delta,
        history: list[EditRequest],
    ) -> Delta:
        """Stack the increment on `current`; runs with `current` active."""
        return current.stack(self._compute_delta(model, tokenizer, requests))

    @abstractmethod
    def _compute_delta(self, model: nn.Module, tokenizer: Any, requests: list[EditRequest]) -> Delta:
        """Compute the delta for a non-empty list of checked requests."""
