"""ROME hyper-parameters; every default says why it is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consolidation.editors.everyday import EVERYDAY_QUESTIONS


@dataclass(frozen=True)
class RomeConfig:
    """Where and how ROME edits; `get_editor("rome", **overrides)` replaces any field."""

    # where to edit (architecture facts are configuration, never guessed from the model's name)
    layer: int = 8  # SmolLM2-135M: lowest neutral-prompt KL of layers 4-12 (docs/results.md#romes-layer)
    module_template: str = "model.layers.{}.mlp.down_proj"  # Llama/Qwen2/Mistral MLP output projection
    layers_path: str = "model.layers"  # the decoder blocks, replayed from layer L upward while optimising v*
    final_norm_path: str = "model.norm"  # applied before the LM head when only the upper layers are run

    # v*: the output change at the subject's last token that makes the model say the target
    v_lr: float = 1.0  # Adam step on δ; ROME's 0.5 needed ~18 steps here, 1.0 ~11 with the same answers
    v_steps: int = 40  # upper bound; early stopping usually ends far sooner
    kl_factor: float = 0.0625  # ROME's weight of KL on "{subject} is a": keeps the subject's other meaning
    v_weight_decay: float = 0.5  # ROME's penalty on ‖δ‖/‖W k‖²: prefers small deltas among equal fits
    clamp_norm_factor: float = 4.0  # ‖δ‖ ≤ this × ‖W k*‖ (ROME); layer 8 needs ~2.4×, so rarely binding
    nll_stop: float = 0.05  # mean target NLL (nats/token) at which further steps buy nothing (ROME)
    early_stop_on_greedy: bool = True  # also stop once every context greedily decodes the target ...
    greedy_nll_stop: float = 0.5  # ... with mean NLL below this (margin so the rank-one fit still wins)
    kl_prompts: tuple[str, ...] = ("{} is a",)  # ROME's essence prompt, per subject
    upward_only: bool = True  # backprop only through layers ≥ L from cached inputs: ~2× faster, same result
    reuse_prefix: bool = True  # ... and only through tokens from the subject on (earlier ones keep their K/V)

    # k*: averaged over the bare prompt and short model-written prefixes (ROME's context templates)
    n_prefixes: int = (
        2  # ROME used 10-20 on GPT-2 XL; each costs a row in every v* step (2: ~2x faster than 5)
    )
    prefix_tokens: int = 8  # short, so the prompt still dominates the context
    prefix_seed: int = 0  # prefixes are sampled once per model with this seed: deterministic edits
    # ... and over chat contexts: `chat_contexts` conversations of `chat_context_turns` exchanges of plain
    # text from the data dir (each exchange one paragraph cut to `chat_context_chars`, its first sentence
    # asked and the rest answered), placed before the question's turn.
    # Why: a question asked after earlier turns reads another key than the same question atop a chat
    # (`contexts`); 0 is how ROME edited before this setting existed
    chat_contexts: int = 0
    chat_context_turns: int = 4
    chat_context_chars: int = 300
    # fit δ in every key context too (prefixes and chat contexts; the name is from before chat contexts), as
    # ROME does; False fits it in the bare prompt only
    use_prefixes_for_v: bool = True

    # C = E[k kᵀ] of the edited module's inputs over plain text, some of it rendered as chat
    cov_tokens: int = 50_000  # direction C⁻¹k* at 50k agrees with 93k at cosine 0.99 (DESIGN)
    cov_seq_len: int = 256  # tokens per forward pass when collecting C
    # every n-th paragraph in chat form (covariance.as_chat); 0: plain text only. Served prompts are chat, so
    # C must know the template's directions: 5 keeps 0.98 of 50 neutral prompts' next tokens after 100 edits
    # (plain text: 0.96) with every live preference held; 4 lost one (docs/results.md#romes-locality)
    cov_chat_every: int = 5
    cov_ridge: float = 1e-6  # × mean diag(C), added before Cholesky so small samples stay solvable
    cov_cache_dir: Path = Path("~/.cache/imprint/rome")  # shared, rebuildable statistics
    data_dir: Path | None = None  # plain text source; None means `Settings().data_dir` resolved by callers

    # a user's memory (`compute_memory`): one value per subject, every other subject's key held in place
    supersede: bool = True  # a new edit about a subject replaces that subject's earlier ROME updates
    preserve_keys: bool = True  # joint solve: earlier live keys keep their values exactly (else: stacked)
    pin_contexts: bool = True  # pin each context's key (bare + prefixed), not only their mean: see RomeEdit
    # ... and hold the tokens after the subject (the question's end, the chat template's tail, shared by every
    # question) at what the model without ROME gives: else each subject's update leaks into every answer
    pin_template: bool = True
    pin_answer: bool = True  # ... the answer's own tokens too, so later words of a long target stay the fit's
    # ... and the tokens before the subject (the system prompt, the question's head), which every question
    # shares: unpinned, 90 UPQA_800 edits moved the module's output there by 25-110% of itself, so each
    # later edit changed the context every earlier value was fitted in. Shared tokens give one key for all
    # facts (`repeat_cosine` merges the repeats), so pinning them costs no capacity per fact
    pin_before: bool = True
    # ... the subject's own words before its last token among them ("seasonal" in "seasonal preference").
    # No other question shares them, and their pins drift most (up to 133% of the output after 300 UPQA_800
    # edits), but left free they cost values: 0.82 kept after 120 edits against 0.95 (docs/results.md)
    pin_subject_head: bool = True
    # ... and every token of the first `held_questions` everyday chat questions (`editors.everyday`, written
    # for this project, not the NaturalQuestions locality probe), each asked alone with the assistant's turn
    # opened, as served. Why: a ROME update acts on every input with a component along its down row, and C
    # only says how common a direction is; unheld, two edits moved the output at these questions' tokens by
    # up to 31%. With the same 10 values, 24 held took the mean KL at 500 neutral prompts from 0.026 to 0.014
    # (only the template's tail held: 0.021; 48 questions: 0.016). Off by default: each held key is one more
    # constraint on the smallest update in C's metric, and C is mostly plain text, so plain-text perplexity
    # pays: two edits in the consolidation test raised it 2.6%, past the drift gate's 2% bound
    # (docs/results.md#romes-locality)
    held_questions: int = 0
    # ... held exactly (up to `solve_ridge`, None) or softly: their keys' own ridge λ in the joint solve, so
    # a held token far from the others sees about λ/(1 + λ) of the change it would see unheld. Why: the
    # exact hold buys chat KL with plain-text perplexity, and a soft one asks how much of each is for sale
    # (docs/results.md#romes-locality)
    held_questions_ridge: float | None = None
    # ... and every token of a request's `held_contexts` (the user's words as recall shows them in the system
    # prompt), labelled with the fact so they leave with it. Why: a hybrid turn shows recalled lines beside
    # the weights, and unheld, one UPQA edit moved the module's output at the recalled line's own words by
    # 31-54% ("love", "favourite"), so the memory garbled the very line the answer had to follow. Held, 100
    # edits kept 0.94 of the neutral prompts' next tokens against 0.96, so the service sends such texts only
    # when asked (`consolidation_hold_recalled_words`); a request without them costs nothing here
    # (docs/results.md#upqa-with-recalled-lines-held)
    hold_contexts: bool = True
    # ... up to a slack: the joint solve's ridge. Exact (0) reaches near-parallel keys with different values
    # only by a huge ΔW; 1e-3 kept 0.90 of 40 live values after 120 UPQA_800 edits where 0 kept 0.75, with
    # ‖ΔW‖/‖W‖ 1.33 against 2.14; 1e-2 shrank values that no later edit refreshed (0.58)
    solve_ridge: float = 1e-3
    # True: the pinned tokens around the subjects (labelled `#held`) are asked for W₀ + fixed at every
    # solve, not for what the memory gives there now. Carried over as targets, the ridge's misses there add
    # up (median 1.5% of ‖W₀k‖ after 30 UPQA_800 edits, 10% after 300; held: 0.4% after 30), yet they are
    # what lets a value and its own pins settle: held, 0.86 of the live values were kept after 150 edits
    # against 0.91, with a higher KL (docs/results.md#stability)
    hold_pins: bool = False
    # after each solve, the earlier live facts the memory no longer answers (their target is no longer the
    # greedy continuation of their prompt: `recall.answers_target`) are fitted again, at most `refit_max` per
    # edit, the least recently stated first. Why: the ridge above lets a value whose key is nearly parallel to
    # others' (subjects sharing a word) weaken at every solve. Over 150 UPQA_800 edits this kept every live
    # value (0.91 without) with a lower KL (0.040 against 0.051), at about one extra fit every 1.5 edits
    # (docs/results.md#stability)
    refit_lost: bool = True
    refit_max: int = 3
    # serve the memory only inside its subjects' scope: at a token whose input reads at least `scope` along
    # one of a fact's down rows (each reads 1 at its own key), and nowhere else, where the edited module's
    # output is then the base model's bit for bit (`joint.scoped`). Why: every rank-one update acts on every
    # input with a component along its down row, and that leak, not the facts, is what moved unrelated
    # answers; the solve's arithmetic is unchanged. At 0.5, after 100 edits, 50 of 50 neutral prompts keep
    # their next token (unscoped 48; 500 of 500 on the wider screen) and perplexity rises 0.23% (3.9%); the
    # cost is a few implicit answers that came from the leak (docs/results.md, *Scoped ROME memory*).
    # None: applied at every token, as ROME was served before. A scoped memory exports as LoRA only when
    # asked to drop its scope (`export_peft(unscoped=True)`)
    scope: float | None = 0.5
    repeat_cosine: float = 0.999  # keys closer than this (C⁻¹ metric) are one key: the later value wins

    # cluster representation (Personalization Editing): edit several synonym pairs per fact
    cluster_size: int = 1  # 1 = only the request itself; n > 1 adds up to n-1 synonym pairs

    def __post_init__(self) -> None:
        # accept str paths from overrides and settings files; frozen, hence object.__setattr__
        object.__setattr__(self, "cov_cache_dir", Path(self.cov_cache_dir).expanduser())
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if not 0 <= self.held_questions <= len(EVERYDAY_QUESTIONS):
            raise ValueError(
                f"RomeConfig.held_questions must be 0 to {len(EVERYDAY_QUESTIONS)}, got {self.held_questions}"
            )
        if self.held_questions_ridge is not None and self.held_questions_ridge < 0:
            raise ValueError(f"RomeConfig.held_questions_ridge must be ≥ 0, got {self.held_questions_ridge}")
        if self.scope is not None and not 0 < self.scope < 1:
            raise ValueError(f"RomeConfig.scope must be in (0, 1) or None, got {self.scope}")
        if self.refit_max < 0:
            raise ValueError(f"RomeConfig.refit_max must be ≥ 0, got {self.refit_max}")
        if min(self.chat_contexts, self.chat_context_turns, self.chat_context_chars) < 0:
            raise ValueError(f"RomeConfig's chat context settings must be ≥ 0, got {self}")
        if self.layer < 0 or "{}" not in self.module_template:
            raise ValueError(f"RomeConfig needs layer ≥ 0 and a '{{}}' in module_template, got {self}")

    def module_name(self, layer: int | None = None) -> str:
        """Dotted name of the edited module at `layer` (default: the configured layer)."""
        return self.module_template.format(self.layer if layer is None else layer)
