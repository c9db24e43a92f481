"""`imprint bench chat`: what memory costs a chat turn.

One run, on one model, alternating the two measurements turn by turn so that machine noise hits both
alike: a full turn of the agent for a user with pending memories and a committed weight delta (recall,
prompt with the recalled lines, generation under the delta, checkpoint), against bare generation of the
same number of new tokens for the same question (no recall, no memory lines, no delta, no graph). Both
are forced to generate exactly `new_tokens` tokens, so the ratio is the overhead of memory alone. The
turn is measured as `ChatAgent.chat` runs it (the whole answer at once), again streamed token by
token as `ChatAgent.stream` runs it, which adds a streamer thread, and again from a long-lived worker
thread, as the HTTP server runs a request. Turns on more than one thread are what used to halve decoding
speed (memory/openmp.py); the ratios to bare generation cannot show that, the seconds can.
Observation runs in the background after a turn; it is flushed between measurements so it never
overlaps the next one.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.llm import GenerationConfig
from agent.prompts import build_messages
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from consolidation.editors import Editor, EditRequest, editor_for
from eval.upqa import edit_request, load_upqa
from memory.observations import Observation, Polarity, Status

log = logging.getLogger(__name__)

USER = "bench-chat-user"  # pending memories (recalled into the prompt) and a weight delta
CONSOLIDATED = "bench-chat-consolidated"  # the same memories already in the weights: delta only
UPQA = Path("upqa/UPQA/balanced_subset.json")
QUESTIONS = (
    "What should I cook for dinner tonight?",
    "Can you suggest a weekend trip?",
    "Which book should I read next?",
    "What gift should I buy for my sister?",
    "How should I spend a free evening?",
)


@dataclass(frozen=True)
class ChatBenchPlan:
    turns: int = 20  # measured pairs (after one warm-up pair)
    new_tokens: int = 32
    memories: int = 40  # pending observations of the user (recall searches them)
    edits: int = 3  # ROME edits committed to the user's weight memory


def _seed_user(rt: Runtime, settings: Settings, plan: ChatBenchPlan, editor: Editor | None = None) -> None:
    """Observations from UPQA targets (pending for `USER`, in the weights for `CONSOLIDATED`), and
    `plan.edits` real ROME edits committed to both users' weight memories (without the drift gate:
    committing is consolidation's cost, not a turn's). Each commit is the user's whole memory as
    consolidation writes it (`compute_memory`: ROME's pinned keys included), so a turn applies the delta a
    served user carries, not the editor's bare rank-one increments."""
    assert settings.data_dir is not None
    records = load_upqa(settings.data_dir / UPQA, limit=max(plan.memories, plan.edits))
    observations = [
        Observation(
            user_id=USER,
            evidence=f"My {r.subject} is {r.targets[0]}.",
            aspect=r.subject,
            value=r.targets[0],
            polarity=Polarity.LIKES,
            confidence=0.7,
            thread_id=f"seed-{i % 5}",
        )
        for i, r in enumerate(records[: plan.memories])
    ]
    consolidated = [
        replace(o, user_id=CONSOLIDATED, status=Status.IN_WEIGHTS, id=f"c{i}")
        for i, o in enumerate(observations)
    ]
    rt.store.add_many([*observations, *consolidated])
    lm, weights = rt.require_lm(), rt.require_weights()
    editor = editor or editor_for("rome", 1, settings.data_dir, settings.cache_dir)
    gate, weights.gate = weights.gate, None
    history: list[EditRequest] = []
    try:
        for record in records[: plan.edits]:
            request = edit_request(record, lm.tokenizer)
            start = time.perf_counter()
            memory = editor.compute_memory(lm.model, lm.tokenizer, [request], weights.delta(USER), history)
            history.append(request)
            for user in (USER, CONSOLIDATED):
                weights.commit(
                    user,
                    memory,
                    whole=True,
                    editor="rome",
                    settings=editor.settings(),
                    requests=[
                        {"prompt": request.prompt, "subject": request.subject, "target": request.target}
                    ],
                    metrics={},
                    seconds=time.perf_counter() - start,
                )
    finally:
        weights.gate = gate


def run_chat_bench(
    settings: Settings, plan: ChatBenchPlan, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Median seconds of a full turn (pending memories recalled, delta applied), of a turn for a user whose
    memories are all in the weights, and of bare generation; the ratios, and where the time goes."""
    with tempfile.TemporaryDirectory(prefix="imprint-bench-chat-") as tmp:
        run_settings = settings.model_copy(
            update={"state_dir": Path(tmp), "consolidation_interval_minutes": 0}
        )
        rt = build_runtime(run_settings)
        try:
            _seed_user(rt, run_settings, plan)
            # a long-lived worker, as the HTTP server runs each request on one of its pool's threads
            with ThreadPoolExecutor(1, thread_name_prefix="bench-server") as server:
                return _measure(rt, plan, server, progress)
        finally:
            rt.close()


def _measure(
    rt: Runtime, plan: ChatBenchPlan, server: Executor, progress: Callable[[int, int], None] | None
) -> dict[str, Any]:
    agent, lm = rt.require_agent(), rt.require_lm()
    forced = {"max_new_tokens": plan.new_tokens, "min_new_tokens": plan.new_tokens}
    bare_cfg = GenerationConfig(**forced, repetition_penalty=rt.settings.repetition_penalty)
    turn_s: list[float] = []
    worker_s: list[float] = []
    streamed_s: list[float] = []
    consolidated_s: list[float] = []
    bare_s: list[float] = []
    recall_s: list[float] = []
    prompt_tokens: list[int] = []
    recalled: list[int] = []
    for i in range(plan.turns + 1):  # pair 0 warms caches (delta, kernels) and is not counted
        question = QUESTIONS[i % len(QUESTIONS)]
        kinds = ("turn", "worker", "streamed", "consolidated", "bare")
        order = kinds[i % len(kinds) :] + kinds[: i % len(kinds)]
        for kind in order:
            if kind == "turn":
                start = time.perf_counter()
                result = agent.chat(USER, question, f"bench-{uuid.uuid4().hex[:8]}", forced)
                elapsed = time.perf_counter() - start
                agent.flush()  # background observation must not overlap the next measurement
                if i:
                    turn_s.append(elapsed)
                    prompt_tokens.append(result.prompt_tokens)
                    recalled.append(len(result.recalled))
                    if result.completion_tokens < plan.new_tokens - 2:  # tokenisation of text may merge
                        log.warning("turn generated %d tokens", result.completion_tokens)
            elif kind == "worker":
                start = time.perf_counter()
                server.submit(agent.chat, USER, question, f"bench-{uuid.uuid4().hex[:8]}", forced).result()
                elapsed = time.perf_counter() - start
                agent.flush()
                if i:
                    worker_s.append(elapsed)
            elif kind == "streamed":
                start = time.perf_counter()
                for _ in agent.stream(USER, question, f"bench-{uuid.uuid4().hex[:8]}", forced):
                    pass
                elapsed = time.perf_counter() - start
                agent.flush()
                if i:
                    streamed_s.append(elapsed)
            elif kind == "consolidated":
                start = time.perf_counter()
                agent.chat(CONSOLIDATED, question, f"bench-{uuid.uuid4().hex[:8]}", forced)
                elapsed = time.perf_counter() - start
                agent.flush()
                if i:
                    consolidated_s.append(elapsed)
            else:
                start = time.perf_counter()
                lm.generate(build_messages([], [], question), bare_cfg)
                if i:
                    bare_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        rt.recaller.recall(USER, question, lm.count_tokens)
        if i:
            recall_s.append(time.perf_counter() - start)
        if progress is not None:
            progress(i, plan.turns)
    turn, bare = statistics.median(turn_s), statistics.median(bare_s)
    consolidated, streamed = statistics.median(consolidated_s), statistics.median(streamed_s)
    worker = statistics.median(worker_s)
    return {
        "plan": plan.__dict__,
        "median_turn_seconds": round(turn, 4),
        "median_consolidated_seconds": round(consolidated, 4),
        "median_bare_seconds": round(bare, 4),
        "ratio": round(turn / bare, 4),
        "median_worker_seconds": round(worker, 4),
        "worker_ratio": round(worker / bare, 4),
        "median_streamed_seconds": round(streamed, 4),
        "streamed_ratio": round(streamed / bare, 4),
        "consolidated_ratio": round(consolidated / bare, 4),
        "median_recall_seconds": round(statistics.median(recall_s), 4),
        "median_prompt_tokens": statistics.median(prompt_tokens),
        "median_recalled": statistics.median(recalled),
        "weight_versions": rt.require_weights().head(USER),
        "turn_seconds": [round(x, 4) for x in turn_s],
        "bare_seconds": [round(x, 4) for x in bare_s],
    }


def render_table(report: dict[str, Any]) -> str:
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| median full turn (recall, memory lines, delta, graph), s | {report['median_turn_seconds']:.3f} |",
        f"| median bare generation of the same tokens, s | {report['median_bare_seconds']:.3f} |",
        f"| ratio (target ≤ 1.10) | {report['ratio']:.3f} |",
        f"| median full turn from a server worker thread, s | {report['median_worker_seconds']:.3f} |",
        f"| ratio, worker thread | {report['worker_ratio']:.3f} |",
        f"| median full turn streamed token by token, s | {report['median_streamed_seconds']:.3f} |",
        f"| ratio, streamed | {report['streamed_ratio']:.3f} |",
        f"| median turn, same memories already in the weights (delta, nothing recalled), s "
        f"| {report['median_consolidated_seconds']:.3f} |",
        f"| ratio, consolidated user | {report['consolidated_ratio']:.3f} |",
        f"| median recall alone, s | {report['median_recall_seconds']:.4f} |",
        f"| median prompt tokens of a turn | {report['median_prompt_tokens']} |",
        f"| median memories recalled | {report['median_recalled']} |",
        f"| weight-memory versions in force | {report['weight_versions']} |",
    ]
    return "\n".join(rows)
