"""Build the heavy objects once, from settings, and hand them to whoever needs them.

This is the composition root: the only place that knows which concrete store, extractor, model and
checkpointer a deployment uses. The CLI and the FastAPI lifespan both call `build_runtime`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.chat_agent import ChatAgent
from agent.graph import GraphDeps
from agent.llm import ChatLM, GenerationConfig
from agent.model_loading import load_model
from agent.observer import Observer
from agent.prompts import build_messages, recall_context
from agent.threads import delete_user_threads, open_checkpointer
from api.auth import KeyStore
from api.settings import Settings
from consolidation.absorbed import AbsorbedLog
from consolidation.drift import DriftConfig, DriftGate, DriftGuard
from consolidation.editors import editor_for
from consolidation.judge import TargetJudge
from consolidation.pipeline import ConsolidationConfig, Consolidator
from consolidation.preferences import StabilityConfig
from consolidation.runs import RunLog
from consolidation.scheduler import ConsolidationService
from memory.chroma import make_client
from memory.embedder import Embedder
from memory.extraction import CueExtractor
from memory.history import History
from memory.recall import RecallConfig, Recaller
from memory.store import ObservationStore
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running deployment holds; `agent` is None when built without the language model."""

    settings: Settings
    embedder: Embedder
    store: ObservationStore
    extractor: CueExtractor
    recaller: Recaller
    keys: KeyStore
    lm: ChatLM | None = None
    weights: WeightMemory | None = None
    agent: ChatAgent | None = None
    consolidation: ConsolidationService | None = None
    _closers: list[Any] = field(default_factory=list)

    def require_consolidation(self) -> ConsolidationService:
        if self.consolidation is None:
            raise RuntimeError(
                "consolidation needs the language model and a data directory (ROME's statistics and the "
                "drift probes are read from it): set IMPRINT_DATA_DIR"
            )
        return self.consolidation

    def require_weights(self) -> WeightMemory:
        if self.weights is None:
            raise RuntimeError("this runtime was built without the language model (with_model=False)")
        return self.weights

    def require_lm(self) -> ChatLM:
        if self.lm is None:
            raise RuntimeError("this runtime was built without the language model (with_model=False)")
        return self.lm

    def require_agent(self) -> ChatAgent:
        if self.agent is None:
            raise RuntimeError("this runtime was built without the language model (with_model=False)")
        return self.agent

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Erase everything of one stored user: observations and their history, weight-memory versions and
        files, conversation threads, consolidation runs. Nobody else's data is touched. The caller holds
        the user's consolidation lock, so no run writes to this user meanwhile."""
        if self.agent is not None:
            self.agent.flush()  # an observation still being extracted would otherwise land afterwards
        observations, history = self.store.forget_user(user_id)
        gone = {"observations": observations, "history_entries": history, "threads": 0}
        gone["weight_versions"] = self.weights.delete_user(user_id) if self.weights is not None else 0
        if self.agent is not None:
            gone["threads"] = delete_user_threads(self.agent.checkpointer, user_id)  # type: ignore[arg-type]
        gone["jobs"] = 0
        if self.consolidation is not None:
            gone["jobs"] = self.consolidation.runs.delete_user(user_id)
            absorbed = self.consolidation.consolidator.absorbed
            if absorbed is not None:
                absorbed.delete_user(user_id)
        log.info("forgot user %s: %s", user_id, gone)
        return gone

    def close(self) -> None:
        """Finish background observation and release files."""
        if self.agent is not None:
            self.agent.deps.observer.close()
        for closer in reversed(self._closers):
            closer()


def _consolidation(rt: Runtime, judge: TargetJudge) -> ConsolidationService | None:
    """The consolidator and its run log; none without a data directory (the editor's statistics and the
    drift probes live there), in which case observations stay in retrieval."""
    settings = rt.settings
    if settings.data_dir is None or rt.lm is None or rt.weights is None:
        log.warning("no data directory: consolidation into weights is off")
        return None
    editor = editor_for(settings.consolidation_editor, 1, settings.data_dir, settings.cache_dir)
    config = ConsolidationConfig(
        stability=StabilityConfig(
            min_support=settings.consolidation_min_support,
            min_threads=settings.consolidation_min_threads,
            explicit_confidence=settings.consolidation_explicit_confidence,
            min_age_seconds=settings.consolidation_min_age_minutes * 60,
        )
    )
    absorbed = AbsorbedLog(settings.runs_path)
    rt._closers.append(absorbed.close)
    tokenizer = rt.lm.tokenizer

    def as_the_agent_asks(question: str) -> str:  # no recalled lines: the edit must stand on its own
        text: str = tokenizer.apply_chat_template(
            build_messages([], [], question), add_generation_prompt=True, tokenize=False
        )
        return text

    def recalled(lines: Sequence[str]) -> str:  # the system turn recall builds: what an edit may hold
        return recall_context(tokenizer, lines)

    consolidator = Consolidator(
        rt.store,
        rt.weights,
        editor,
        rt.lm.model,
        tokenizer,
        rt.embedder,
        judge,
        config,
        absorbed,
        render=as_the_agent_asks,
        recall_render=recalled if settings.consolidation_hold_recalled_words else None,
    )
    runs = RunLog(settings.runs_path)
    rt._closers.append(runs.close)
    return ConsolidationService(consolidator, runs, settings.locks_dir)


def _drift_gate(settings: Settings, lm: ChatLM, embedder: Embedder) -> DriftGate | None:
    """Every commit of a served user's memory passes the drift guard (its base scores are computed on the
    first commit, then cached); without a data directory there are no probes, and commits go unchecked."""
    if settings.data_dir is None:
        log.warning("no data directory: weight-memory commits will not be drift-checked")
        return None
    config = DriftConfig(data_dir=settings.data_dir, cache_dir=settings.cache_dir / "drift")
    return DriftGate(DriftGuard(lm.model, lm.tokenizer, config, TargetJudge(embedder)))


def recall_config(settings: Settings) -> RecallConfig:
    """The deployment's recall settings (also what the evaluation harness recalls with)."""
    return RecallConfig(
        k=settings.recall_k,
        token_budget=settings.recall_token_budget,
        min_similarity=settings.recall_min_similarity,
        half_life_days=settings.recall_half_life_days,
        relative_margin=settings.recall_relative_margin,
    )


def build_runtime(
    settings: Settings, with_model: bool = True, embedder: Embedder | None = None, lm: ChatLM | None = None
) -> Runtime:
    """Build store, extractor and recall; with `with_model`, also the language model and the agent.

    `embedder` and `lm` let a caller that already holds them (tests, benchmarks) share them.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # invariant: nothing downloads at run time by surprise
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    embedder = embedder or Embedder(settings.embedder_path, device=settings.device)
    client = make_client(path=None if settings.chroma else settings.chroma_path, url=settings.chroma or None)
    history = History(settings.history_path)
    store = ObservationStore(client, embedder, history)
    extractor = CueExtractor(embedder)
    recaller = Recaller(store, recall_config(settings))
    keys = KeyStore(settings.keys_path)
    rt = Runtime(
        settings=settings, embedder=embedder, store=store, extractor=extractor, recaller=recaller, keys=keys
    )
    rt._closers.extend([history.close, keys.close])
    if with_model:
        rt.lm = lm or ChatLM(
            load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
        )
        rt.weights = WeightMemory(
            settings.weights_path, rt.lm.model, gate=_drift_gate(settings, rt.lm, embedder)
        )
        orphans = rt.weights.recover()  # a crash mid-commit leaves files the ledger never named
        if orphans:
            log.warning("removed %d orphaned delta file(s) left by an interrupted commit", len(orphans))
        rt._closers.append(rt.weights.close)
        checkpointer = open_checkpointer(settings.threads_path)
        rt._closers.append(checkpointer.conn.close)
        deps = GraphDeps(
            lm=rt.lm,
            recaller=recaller,
            observer=Observer(extractor, store),
            generation=GenerationConfig(
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                repetition_penalty=settings.repetition_penalty,
            ),
            history_turns=settings.history_turns,
            weights=rt.weights,
        )
        rt.agent = ChatAgent(deps, checkpointer, settings.max_message_chars)
        rt.consolidation = _consolidation(rt, TargetJudge(embedder))
    return rt
