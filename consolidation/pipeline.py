"""One consolidation of one user: promote stable preferences → edit → verify → drift guard → commit.

Order of writes, for crash safety: the weight memory's commit (delta file, then its ledger row, atomically)
comes before any observation changes status. The ledger row names the observations it carries and those it
supersedes, so `reconcile` can always bring the statuses in line with the version in force: after a crash
between commit and status updates, after a rollback, or after a commit another process made. A run starts
by reconciling; a preference whose observations are all in the weights then has nothing left to do, so
running twice in a row changes nothing the second time and each preference is committed exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from consolidation.absorbed import AbsorbedLog
from consolidation.editors.base import Editor, EditRequest, subject_key
from consolidation.judge import TargetJudge
from consolidation.metrics import Render, bare_chat, greedy_answers
from consolidation.preferences import ClusterConfig, Preference, StabilityConfig, assess, cluster_preferences
from consolidation.preferences.requests import edit_request, probe_item
from memory.embedder import Embedder
from memory.faults import crash_point
from memory.observations import Observation, Status
from memory.recall import memory_line
from memory.store import ObservationStore
from memory.weights.delta import Delta
from memory.weights.gate import CommitRejected
from memory.weights.hooks import DeltaApplier
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

MAX_HELD_LINES = 3  # of a preference's observations, the distinct words an edit holds as recalled lines
SOURCE = "consolidation"  # the ledger entries this pipeline writes carry it, so reconcile reads only those


@dataclass(frozen=True)
class ConsolidationConfig:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    verify: bool = True  # ask each promoted preference's question under the candidate before committing
    max_new_tokens: int = 24  # of a verification answer


@dataclass(frozen=True)
class Outcome:
    """What became of one candidate preference in a run."""

    preference: str  # its summary, "diet: likes vegetarian food"
    action: str  # committed | rejected | waiting | in_weights
    reason: str
    observations: tuple[str, ...] = ()


@dataclass
class RunResult:
    user_id: str
    started: float
    finished: float = 0.0
    version: int | None = None  # the version committed by this run, if any
    superseded: int = 0  # observations this run marked superseded
    reconciled: int = 0  # observation statuses brought in line with the version in force
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(o.action == action for o in self.outcomes)

    @property
    def promoted(self) -> int:
        return self.count("committed") + self.count("rejected")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(promoted=self.promoted, committed=self.count("committed"), rejected=self.count("rejected"))
        return out


Progress = Callable[[str], None]


class Consolidator:
    """Runs consolidations for users of one observation store and one weight memory."""

    def __init__(
        self,
        store: ObservationStore,
        weights: WeightMemory,
        editor: Editor,
        model: nn.Module,
        tokenizer: Any,
        embedder: Embedder,
        judge: TargetJudge,
        config: ConsolidationConfig | None = None,
        absorbed: AbsorbedLog | None = None,
        render: Render | None = None,
        recall_render: Callable[[Sequence[str]], str] | None = None,
    ) -> None:
        self.store, self.weights, self.editor = store, weights, editor
        self.absorbed = absorbed  # None: repeats of a preference in weights stay pending, unedited
        # the prompt the agent sends for a question (its system prompt, chat template): edits are made,
        # and verified, where they will be read; default: the question alone in the chat template
        self.render = render or bare_chat(tokenizer)
        # the system turn carrying recalled lines, as the agent renders it: an edit holds the words that
        # stated its preference there (`EditRequest.held_contexts`), because every recalled line states a
        # preference in the same words ("I love", "my favourite") and the weights serve beside them.
        # None: edits hold nothing of the kind
        self.recall_render = recall_render
        self.model, self.tokenizer, self.embedder, self.judge = model, tokenizer, embedder, judge
        self.config = config or ConsolidationConfig()

    # keeping statuses in line with the weights

    def _in_force(self, user_id: str) -> list[tuple[int, dict[str, Any]]]:
        """(version, request) of this pipeline's requests in the version in force, oldest first."""
        head = self.weights.head(user_id)
        if head == 0:
            return []
        lineage = self.weights.ledger.lineage(user_id, head)
        return [(info.version, r) for info in lineage for r in info.requests if r.get("source") == SOURCE]

    def _entries(self, user_id: str) -> list[dict[str, Any]]:
        return [entry for _, entry in self._in_force(user_id)]

    def reconcile(self, user_id: str, observations: Sequence[Observation] | None = None) -> int:
        """Set each observation's status to what the version in force says (in weights, superseded, or
        back to pending when no version in force carries it); returns how many changed."""
        absorbed = self.absorbed.by_version(user_id) if self.absorbed is not None else {}
        wanted: dict[str, Status] = {}
        for version, entry in self._in_force(user_id):  # later entries win: a superseding edit comes after
            carried = [*entry.get("observations", []), *absorbed.pop(version, [])]
            wanted.update({i: Status.IN_WEIGHTS for i in carried})
            wanted.update({i: Status.SUPERSEDED for i in entry.get("supersedes", [])})
        changed = 0
        for obs in observations if observations is not None else self.store.list(user_id):
            target = wanted.get(obs.id)
            if target is None and obs.status is Status.IN_WEIGHTS:
                target = Status.PENDING  # its version was rolled back or never committed
            if target is None or target is obs.status or obs.status is Status.REJECTED:
                continue
            self.store.set_status(user_id, obs.id, target, reason="reconciled with the weight memory")
            changed += 1
        if changed:
            log.info("user %s: reconciled %d observation status(es) with the weight memory", user_id, changed)
        return changed

    def _absorb(self, user_id: str, pref: Preference, pending: list[str]) -> Outcome:
        """New observations that agree with a preference already in the weights join its version: no
        edit, no new version; they leave recall like the ones the edit was made from."""
        carrying = self._carrying_version(user_id, pref)
        if self.absorbed is None or carrying is None:
            return Outcome(pref.summary(), "in_weights", "already in the weights", tuple(pending))
        self.absorbed.add(user_id, pending, carrying)
        for obs_id in pending:
            self.store.set_status(
                user_id, obs_id, Status.IN_WEIGHTS, reason=f"agrees with version {carrying}"
            )
        reason = (
            f"already in the weights (version {carrying}); {len(pending)} repeated observation(s) absorbed"
        )
        return Outcome(pref.summary(), "in_weights", reason, tuple(pending))

    def _carrying_version(self, user_id: str, pref: Preference) -> int | None:
        held = set(pref.in_weights)
        absorbed = self.absorbed.by_version(user_id) if self.absorbed is not None else {}
        for version, entry in reversed(self._in_force(user_id)):
            if held & {*entry.get("observations", []), *absorbed.get(version, [])}:
                return version
        return None

    # the run

    def run(self, user_id: str, progress: Progress | None = None) -> RunResult:
        """Consolidate `user_id` once; safe to repeat (the second run finds nothing new)."""
        say = progress or (lambda message: log.info("user %s: %s", user_id, message))
        result = RunResult(user_id=user_id, started=time.time())
        result.reconciled = self.reconcile(user_id)
        observations = self.store.list(user_id)
        prefs = cluster_preferences(observations, self.embedder, self.config.cluster)
        say(f"{len(observations)} observations, {len(prefs)} candidate preferences")
        entries = self._entries(user_id)
        in_weights_ids = {i for e in entries for i in e.get("observations", [])}
        promote: list[Preference] = []
        for pref in prefs:
            pending = [i for i in pref.support if i not in pref.in_weights]
            replaces = [i for i in pref.superseded if i in in_weights_ids]
            if not pending and not replaces:
                result.outcomes.append(Outcome(pref.summary(), "in_weights", "already in the weights"))
                continue
            if pref.in_weights and not replaces:  # the held position is in the weights already
                result.outcomes.append(self._absorb(user_id, pref, pending))
                continue
            verdict = assess(pref, self.config.stability)
            if verdict.stable or (replaces and not pref.contested):
                promote.append(pref)
            else:
                result.outcomes.append(Outcome(pref.summary(), "waiting", verdict.reason, tuple(pending)))
            result.superseded += self._supersede_in_retrieval(user_id, pref, in_weights_ids)
        if promote:
            say(f"editing {len(promote)} preference(s) into the weights with {self.editor.name}")
            evidence = {o.id: o.evidence for o in observations}
            self._promote(user_id, promote, entries, result, say, evidence)
        result.finished = time.time()
        say(
            f"done in {result.finished - result.started:.1f} s: {result.count('committed')} committed, "
            f"{result.count('rejected')} rejected, {result.count('waiting')} waiting"
        )
        return result

    def _supersede_in_retrieval(self, user_id: str, pref: Preference, in_weights_ids: set[str]) -> int:
        """Observations the preference superseded leave recall now, unless the weights still carry them
        (then they change status when the replacing edit commits)."""
        changed = 0
        for obs_id in pref.superseded:
            if obs_id not in in_weights_ids:
                self.store.set_status(
                    user_id, obs_id, Status.SUPERSEDED, reason=f"superseded by {pref.summary()}"
                )
                changed += 1
        return changed

    def _promote(
        self,
        user_id: str,
        prefs: list[Preference],
        entries: list[dict[str, Any]],
        result: RunResult,
        say: Progress,
        evidence: dict[str, str],
    ) -> None:
        subjects = [self._subject_for(p, entries) for p in prefs]
        requests = [
            edit_request(pref, self.render, subject, self._held(pref, evidence))
            for pref, subject in zip(prefs, subjects, strict=True)
        ]
        history = [_request_of(e) for e in entries]
        started = time.perf_counter()
        current = self.weights.delta(user_id)
        chosen = list(range(len(prefs)))
        failed: dict[int, str] = {}
        memory, missed = self._edit(current, history, requests, prefs, subjects, chosen)
        if missed:  # drop the preferences the edit did not take, and edit the rest once more
            failed.update({i: "not recalled after the edit" for i in missed})
            chosen = [i for i in chosen if i not in missed]
            if chosen:
                memory, missed = self._edit(current, history, requests, prefs, subjects, chosen)
                if missed:
                    reason = "not recalled after re-editing without the preferences that failed"
                    failed.update({i: reason for i in chosen})
                    chosen = []
        for i, reason in failed.items():
            result.outcomes.append(Outcome(prefs[i].summary(), "rejected", reason, prefs[i].support))
        if not chosen:
            return
        new_entries = [_entry(prefs[i], subjects[i], requests[i]) for i in chosen]
        seconds = time.perf_counter() - started
        crash_point("consolidation:computed")  # the memory is computed and verified, nothing written
        say(f"checking drift of {len(chosen)} edit(s) before commit")
        try:
            info = self.weights.commit(
                user_id,
                memory,
                whole=True,
                editor=self.editor.name,
                settings=self.editor.settings(),
                requests=new_entries,
                metrics={"verified": len(chosen), "refitted": self.editor.refitted},
                seconds=seconds,
            )
        except CommitRejected as exc:
            reasons = "; ".join(exc.verdict.reasons) or "the commit gate refused"
            for i in chosen:
                result.outcomes.append(
                    Outcome(prefs[i].summary(), "rejected", f"drift guard: {reasons}", prefs[i].support)
                )
            return
        result.version = info.version
        crash_point("consolidation:committed")  # the version is in force, no status changed yet
        result.reconciled += self.reconcile(user_id)
        for i in chosen:
            result.outcomes.append(
                Outcome(prefs[i].summary(), "committed", f"version {info.version}", prefs[i].support)
            )

    def _subject_for(self, pref: Preference, entries: list[dict[str, Any]]) -> str:
        """The subject of an earlier edit of the same aspect (so this one replaces it), else the aspect."""
        mine = set(pref.support) | set(pref.superseded)
        for entry in reversed(entries):
            if mine & (set(entry.get("observations", [])) | set(entry.get("supersedes", []))):
                return str(entry["subject"])
        taken = {subject_key(str(e["subject"])) for e in entries}
        for phrase in pref.subjects:  # a fresh aspect must not reuse another preference's subject
            if subject_key(phrase) not in taken:
                return phrase
        return pref.aspect

    def _held(self, pref: Preference, evidence: dict[str, str]) -> list[str]:
        """The recall context an edit of `pref` holds: its observations' words as recalled lines."""
        if self.recall_render is None:
            return []
        lines = list(dict.fromkeys(memory_line(evidence[i]) for i in pref.support if i in evidence))
        return [self.recall_render(lines[:MAX_HELD_LINES])] if lines else []

    def _edit(
        self,
        current: Delta,
        history: list[EditRequest],
        requests: Sequence[EditRequest],
        prefs: Sequence[Preference],
        subjects: Sequence[str],
        chosen: Sequence[int],
    ) -> tuple[Delta, list[int]]:
        """The whole memory with preferences `chosen` written in, and which of them it does not recall."""
        asked = [requests[i] for i in chosen]
        memory = self.editor.compute_memory(self.model, self.tokenizer, asked, current, history)
        missed = self._verify(memory, [prefs[i] for i in chosen], [subjects[i] for i in chosen])
        return memory, [chosen[k] for k in missed]

    def _verify(self, memory: Delta, prefs: Sequence[Preference], subjects: Sequence[str]) -> list[int]:
        """Indices of `prefs` whose question is not answered with their value under `memory`."""
        if not self.config.verify:
            return []
        items = [probe_item(p, s) for p, s in zip(prefs, subjects, strict=True)]
        with DeltaApplier(self.model).activate(memory):
            answers = greedy_answers(
                self.model,
                self.tokenizer,
                [it.question for it in items],
                self.config.max_new_tokens,
                render=self.render,
            )
        verdicts = self.judge.judge_many(answers, [it.targets for it in items])
        for it, answer, v in zip(items, answers, verdicts, strict=True):
            log.debug("verify %r → %r: %s", it.question, answer, "hit" if v.hit else "miss")
        return [k for k, v in enumerate(verdicts) if not v.hit]


def _entry(pref: Preference, subject: str, request: EditRequest) -> dict[str, Any]:
    """The ledger's record of one edit: enough to re-ask it (retention), rebuild it (re-fitting editors)
    and reconcile statuses (which observations it carries and supersedes)."""
    item = probe_item(pref, subject)
    return {
        "source": SOURCE,
        "preference": pref.summary(),
        "subject": subject,
        "question": item.question,
        "target": pref.value,
        "targets": list(pref.targets),
        "polarity": pref.polarity.value,
        "observations": list(pref.support),
        "supersedes": list(pref.superseded),
        "prompt": request.prompt,
        "paraphrases": request.paraphrases,
        "subject_synonyms": request.subject_synonyms,
        "target_synonyms": request.target_synonyms,
        "held_contexts": request.held_contexts,
    }


def _request_of(entry: dict[str, Any]) -> EditRequest:
    return EditRequest(
        prompt=str(entry["prompt"]),
        subject=str(entry["subject"]),
        target=str(entry["target"]),
        paraphrases=list(entry.get("paraphrases", [])),
        subject_synonyms=list(entry.get("subject_synonyms", [])),
        target_synonyms=list(entry.get("target_synonyms", [])),
        held_contexts=list(entry.get("held_contexts", [])),
    )
