"""`DriftGuard`: scores a candidate weight memory on fixed probes against the base model and says whether it
may be committed (DESIGN, Invariant 6: no version without a passing drift check).

The base model's per-item scores are computed once per model, data and probe settings and cached on disk;
a check then costs one pass of the candidate over the probes. Every forward pass is batched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from consolidation.drift.config import DriftConfig
from consolidation.drift.data import boolq_items, file_fingerprint, heldout_text, nq_items
from consolidation.drift.norms import counting_opens, norm_checks
from consolidation.drift.replay import UpperReplay
from consolidation.drift.report import Check, DriftReport
from consolidation.drift.scoring import Body, boolq_scores, full_body, nq_scores, window_nll
from consolidation.drift.stats import paired_change
from consolidation.editors.rome.covariance import model_fingerprint
from consolidation.judge import TargetJudge
from consolidation.metrics import ProbeItem, greedy_answers, locality, neutral_prompts, next_token_logprobs
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when a probe's scoring changes: old caches are then ignored

# (metric, tolerance field) of the paired tests, per probe
PAIRED = {
    "boolq": (("boolq_accuracy", "boolq_accuracy_tolerance"), ("boolq_margin", "boolq_margin_tolerance")),
    "nq": (("nq_loglik", "nq_loglik_tolerance"), ("nq_exact_match", "nq_exact_match_tolerance")),
}


# settings that change how a check runs, not what it scores: they leave the cached base scores valid
NOT_IN_SCORES = ("replay_upper", "layers_path", "final_norm_path")


class DriftGuard:
    """Drift checks of candidate memories on one model; cheap to keep, expensive only on first use."""

    def __init__(
        self, model: nn.Module, tokenizer: Any, config: DriftConfig, judge: TargetJudge | None = None
    ) -> None:
        if config.data_dir is None:
            raise ValueError("DriftConfig.data_dir is needed: the probes are read from it")
        self.model, self.tokenizer, self.config, self.judge = model, tokenizer, config, judge
        self.applier = DeltaApplier(model)
        self.replay = (
            UpperReplay(model, config.layers_path, config.final_norm_path) if config.replay_upper else None
        )
        self._base: dict[str, Any] | None = None
        self._inputs: dict[str, Any] | None = None

    # probe inputs and scores

    def _probe_inputs(self) -> dict[str, Any]:
        if self._inputs is None:
            cfg, data = self.config, Path(self.config.data_dir or "")
            neutral = neutral_prompts(data, cfg.locality_prompts)
            exclude = {p[:-1].casefold() for p in neutral}
            self._inputs = {
                "boolq": boolq_items(data, cfg.boolq_items, cfg.seed) if "boolq" in cfg.probes else [],
                "nq": nq_items(data, cfg.nq_items, cfg.seed, exclude) if "nq" in cfg.probes else [],
                "text": heldout_text(data) if "ppl" in cfg.probes else "",
                "neutral": neutral,
            }
        return self._inputs

    def scores(self, delta: Delta | None = None) -> dict[str, Any]:
        """Per-item scores of the model under `delta` (None: the base model)."""
        inputs = self._probe_inputs()
        body: Body = full_body(self.model)
        if self.replay is not None:
            replay, lowest = self.replay, self.replay.lowest_block(delta)
            body = lambda enc: replay.hidden(enc, lowest)  # noqa: E731
        with self.applier.activate(delta):
            return self._scores(inputs, body, delta)

    def _scores(self, inputs: dict[str, Any], body: Body, delta: Delta | None) -> dict[str, Any]:
        cfg, model, tok = self.config, self.model, self.tokenizer

        def ppl() -> dict[str, Any]:
            with counting_opens(model, delta) as opened:  # a scoped memory's reach, on the same tokens
                nll = window_nll(
                    model, tok, inputs["text"], cfg.ppl_tokens, cfg.ppl_window, cfg.batch_size // 4 or 1, body
                )
            return {"ppl_window_nll": nll, **({"scope_open_share": opened} if opened else {})}

        probes: dict[str, Any] = {
            "boolq": lambda: dict(
                zip(
                    ("boolq_accuracy", "boolq_margin"),
                    boolq_scores(model, tok, inputs["boolq"], cfg.boolq_passage_tokens, cfg.batch_size, body),
                    strict=True,
                )
            ),
            "nq": lambda: dict(
                zip(
                    ("nq_loglik", "nq_exact_match"),
                    nq_scores(model, tok, inputs["nq"], cfg.nq_answer_tokens, cfg.batch_size, body),
                    strict=True,
                )
            ),
            "ppl": ppl,
            "locality": lambda: {
                "locality_logprobs": next_token_logprobs(model, tok, inputs["neutral"], cfg.batch_size, body)
            },
        }
        out: dict[str, Any] = {}
        for probe, score in probes.items():
            if probe in cfg.probes:
                started = time.perf_counter()
                out.update(score())
                log.debug("drift probe %s scored in %.1f s", probe, time.perf_counter() - started)
        return out

    def _cache_path(self) -> Path:
        cfg = self.config
        keyed = {
            k: v
            for k, v in asdict(cfg).items()
            if k not in ("cache_dir", "data_dir") and "tolerance" not in k
        }
        keyed = {
            k: v
            for k, v in keyed.items()
            if not k.startswith("max_") and k not in ("alpha", "bootstrap", *NOT_IN_SCORES)
        }
        digest = hashlib.sha256(
            json.dumps(
                [CACHE_VERSION, keyed, file_fingerprint(Path(cfg.data_dir or ""))],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:12]
        return cfg.cache_dir / f"base-{model_fingerprint(self.model)}-{digest}.pt"

    def base_scores(self) -> dict[str, Any]:
        """The base model's per-item scores: from the cache, or computed once (no delta active) and cached."""
        if self._base is None:
            path = self._cache_path()
            if path.exists():
                self._base = torch.load(path, weights_only=True)
                log.info("drift: base-model scores from %s", path)
            else:
                started = time.perf_counter()
                self._base = self.scores(None)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save(self._base, tmp)
                tmp.replace(path)
                log.info(
                    "drift: base-model scores computed in %.1f s, cached at %s",
                    time.perf_counter() - started,
                    path,
                )
        assert self._base is not None
        return self._base

    # the verdict

    def check(
        self, candidate: Delta, parent: Delta | None = None, earlier: Sequence[ProbeItem] = ()
    ) -> DriftReport:
        """The drift report of `candidate` (a user's whole memory) against the base model.

        `earlier` are the user's committed preferences that must survive (retention); they are scored
        under `parent` (the memory in force now) and under the candidate, and only those recalled now count.
        """
        cfg = self.config
        base = self.base_scores()
        started = time.perf_counter()
        now = self.scores(candidate)
        checks: list[Check] = []
        for probe, metrics in PAIRED.items():
            if probe not in cfg.probes:
                continue
            for metric, tolerance_field in metrics:
                tolerance = float(getattr(cfg, tolerance_field))
                checks.append(_paired_check(metric, base[metric], now[metric], tolerance, cfg))
        if "ppl" in cfg.probes:
            checks.append(_perplexity_check(base["ppl_window_nll"], now["ppl_window_nll"], cfg.max_ppl_rise))
        if "locality" in cfg.probes:
            checks.extend(
                _locality_checks(base["locality_logprobs"], now["locality_logprobs"], cfg.max_locality_kl)
            )
        if "norm" in cfg.probes:
            checks.extend(norm_checks(self.model, candidate, now.get("scope_open_share", {}), cfg))
        if "retention" in cfg.probes and earlier and self.judge is not None:
            checks.append(self._retention_check(candidate, parent, earlier))
        seconds = time.perf_counter() - started
        report = DriftReport(checks=checks, seconds=seconds, settings=_settings(cfg))
        log.info(
            "drift check %s in %.1f s%s",
            "passed" if report.passed else "FAILED",
            seconds,
            "" if report.passed else ": " + "; ".join(report.reasons),
        )
        return report

    def _retention_check(self, candidate: Delta, parent: Delta | None, earlier: Sequence[ProbeItem]) -> Check:
        assert self.judge is not None
        questions = [it.question for it in earlier]
        targets = [it.targets for it in earlier]

        def recalled(delta: Delta | None) -> list[bool]:
            with self.applier.activate(delta):
                answers = greedy_answers(self.model, self.tokenizer, questions, batch_size=4 * cfg.batch_size)
            return [v.hit for v in self.judge.judge_many(answers, targets)]  # type: ignore[union-attr]

        cfg, started = self.config, time.perf_counter()
        before = recalled(parent) if parent is not None else [True] * len(earlier)
        after = recalled(candidate)
        held = sum(before)
        lost = sum(b and not a for b, a in zip(before, after, strict=True))
        share = lost / held if held else 0.0
        ok = share <= self.config.max_retention_loss
        return Check(
            name="retention",
            candidate=sum(after) / len(after),
            base=None if parent is None else held / len(before),
            rule=f"loses ≤ {self.config.max_retention_loss:.0%} of the preferences recalled now",
            passed=ok,
            reason="" if ok else f"loses {lost} of {held} recalled preferences",
            detail={
                "recalled_before": float(held),
                "lost": float(lost),
                "preferences": float(len(earlier)),
                "seconds": round(time.perf_counter() - started, 2),
            },
        )


def _paired_check(
    metric: str, base: Sequence[float], now: Sequence[float], tolerance: float, cfg: DriftConfig
) -> Check:
    pc = paired_change(base, now, tolerance, cfg.alpha, cfg.bootstrap, cfg.seed)
    reason = ""
    if pc.worse:
        reason = f"dropped {pc.change:+.4f}; even the upper bound {pc.upper:+.4f} is below −{tolerance:g}"
    return Check(
        name=metric,
        candidate=pc.candidate,
        base=pc.base,
        rule=f"change ≥ −{tolerance:g} at {1 - cfg.alpha:.0%} (paired bootstrap, {len(base)} items)",
        passed=not pc.worse,
        reason=reason,
        detail={"upper_bound": round(pc.upper, 5), "items": float(len(base))},
    )


def _perplexity_check(base: Sequence[float], now: Sequence[float], max_rise: float) -> Check:
    base_ppl = float(torch.tensor(base).mean().exp())
    ppl = float(torch.tensor(now).mean().exp())
    rise = ppl / base_ppl - 1.0
    ok = rise <= max_rise
    return Check(
        name="perplexity",
        candidate=ppl,
        base=base_ppl,
        rule=f"rise ≤ {max_rise:.0%} on held-out wikitext",
        passed=ok,
        reason="" if ok else f"rose {rise:.2%}, over {max_rise:.0%}",
        detail={"rise": round(rise, 5), "windows": float(len(base))},
    )


def _locality_checks(base: torch.Tensor, now: torch.Tensor, max_kl: float) -> list[Check]:
    loc = locality(base, now)
    ok = loc["locality_kl"] <= max_kl
    return [
        Check(
            name="locality_kl",
            candidate=loc["locality_kl"],
            base=0.0,
            rule=f"mean KL(base ‖ candidate) ≤ {max_kl:g} on neutral prompts",
            passed=ok,
            reason="" if ok else f"KL {loc['locality_kl']:.3f} over {max_kl:g}",
        ),
        Check(
            name="locality_top1",
            candidate=loc["locality"],
            base=1.0,
            rule="reported: share of neutral prompts whose next token is unchanged",
            passed=True,
        ),
    ]


def _settings(cfg: DriftConfig) -> dict[str, Any]:
    return {
        k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
        for k, v in asdict(cfg).items()
    }
