"""What the drift guard measures and where it draws the line; every default says why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ALL_PROBES = ("boolq", "nq", "ppl", "locality", "retention", "norm")


@dataclass(frozen=True)
class DriftConfig:
    """Probe sizes, seeds and pass/fail thresholds of `DriftGuard`."""

    data_dir: Path | None = None  # holds boolq/, nq_open/, wikitext/; None: the caller's Settings().data_dir
    cache_dir: Path = Path("~/.cache/imprint/drift")  # base-model scores, per model and probe set
    probes: tuple[str, ...] = ALL_PROBES  # which checks run (imprint drift --probes)
    seed: int = 0  # fixed item subsets: the same items every check, so base and candidate pair up

    # sizes: enough items that one flipped answer is half a point, small enough for ≤ 60 s on 2 cores
    boolq_items: int = 200
    boolq_passage_tokens: int = 80  # passages cut to this many tokens: BoolQ is most of a check's time
    nq_items: int = 200
    nq_answer_tokens: int = 8  # greedy tokens generated for exact match; gold answers are short
    ppl_tokens: int = 4096  # held-out wikitext tokens (wiki.test.raw: never ROME's statistics text)
    ppl_window: int = 512  # tokens per scored window
    locality_prompts: int = 50  # neutral chat prompts (the edit metrics' locality set)
    batch_size: int = 16
    # replay only the decoder blocks from the lowest edited one upward, from what they received the first
    # time (same scores, ~a quarter less work for ROME's block 8 of 30); the paths are architecture facts
    replay_upper: bool = True
    layers_path: str = "model.layers"
    final_norm_path: str = "model.norm"

    # paired tests: a metric fails only when it is worse than base beyond `tolerance` at confidence 1-alpha
    # (one-sided paired bootstrap over the fixed items), so a pass means "no change beyond probe noise"
    alpha: float = 0.01
    bootstrap: int = 2000
    boolq_accuracy_tolerance: float = 0.01  # one point of 200 items: two answers
    boolq_margin_tolerance: float = 0.05  # signed log-odds (nats) of the right answer
    nq_loglik_tolerance: float = 0.05  # nats per gold-answer token
    nq_exact_match_tolerance: float = 0.01

    # bounds
    max_ppl_rise: float = 0.02  # perplexity may rise at most 2% on held-out text
    max_locality_kl: float = 0.10  # mean KL(base ‖ candidate) of neutral prompts' next token
    max_norm_growth: float = 0.10  # ‖W₀+ΔW‖_F / ‖W₀‖_F − 1 for each edited matrix, of what applies everywhere
    # a scoped update (ROME's default) adds nothing where its scope is closed, so its whole size is held
    # only against collapse: 300 scoped edits of UPQA_800 grew it 79% with BoolQ, NQ and every neutral
    # prompt's next token at the base model's (docs/results.md, Stability); what it reaches is bounded below
    max_scoped_norm_growth: float = 1.0
    # share of held-out wikitext tokens at which a scoped module opens: 0.15% to 0.17% (6 or 7 of 4096) at
    # 30, 100, 200 and 300 edits of that run; a scope that opens everywhere reads 100%
    max_scope_open_share: float = 0.02
    max_retention_loss: float = 0.10  # share of the user's recalled preferences the candidate may lose

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        unknown = set(self.probes) - set(ALL_PROBES)
        if unknown:
            raise ValueError(f"unknown drift probes {sorted(unknown)}; choose from {', '.join(ALL_PROBES)}")
        for name in ("boolq_items", "nq_items", "ppl_tokens", "ppl_window", "locality_prompts", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DriftConfig.{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"DriftConfig.alpha must be in (0, 0.5), got {self.alpha}")
