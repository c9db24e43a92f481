"""ROME as an `Editor`: per request k*, v*, and the rank-one update that maps k* to v* (r-ROME form).

ΔW = (v* − W_eff k*) (C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*), with the same k* in numerator and denominator, so the edited
layer maps k* to v* exactly (the original code's mismatch causes "disabling edits"). W_eff k* is read by
calling the module, so a user delta active through hooks, and earlier edits of the same call, count.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, cast

import torch
from torch import nn

from consolidation.editors.base import (
    Editor,
    EditRequest,
    check_requests,
    claimed_pairs,
    join_target,
    live_requests,
    subject_key,
)
from consolidation.editors.everyday import EVERYDAY_QUESTIONS
from consolidation.editors.registry import register_editor
from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.rome.contexts import KeyContext, chat_contexts
from consolidation.editors.rome.covariance import (
    interleaved_paragraphs,
    model_fingerprint,
    second_moments,
    text_files,
)
from consolidation.editors.rome.joint import (
    LABEL_PREFIX,
    SHARED_LABEL,
    KeyValue,
    down_row,
    held_drift,
    held_label,
    is_held,
    keys_of,
    label_for,
    label_subjects,
    module_output,
    scoped,
    solve_jointly,
    solve_stacked,
    split_own,
)
from consolidation.editors.rome.keys import question_inputs, sample_prefixes, subject_inputs, text_inputs
from consolidation.editors.rome.recall import answers_target
from consolidation.editors.rome.tracing import add_to_output
from consolidation.editors.rome.values import compute_delta_v
from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.hooks import DeltaApplier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RomeEdit:
    """One computed edit, with what it was computed from (for tests and diagnostics)."""

    request: EditRequest
    key: torch.Tensor  # (in,) k*
    value: torch.Tensor  # (out,) v* = W_eff k* + δ
    update: LowRankUpdate  # rank one: up = v* − W_eff k*, down = (C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*)
    nll: float  # target NLL reached while fitting v*
    steps: int
    # (n_contexts, in) the key in the bare prompt, each prefixed one and each chat context; k* is their mean
    context_keys: torch.Tensor
    context_values: torch.Tensor  # (n_contexts, out) W_eff k_j + δ: what δ was fitted to give in each context
    after_subject: torch.Tensor  # (m, in) the module's inputs at the bare prompt's later tokens
    before_subject: torch.Tensor  # (p, in) ... and at the ones before the subject
    subject_head: torch.Tensor  # (h, in) ... and at the subject's words before its last one

    def pinned(self) -> list[KeyValue]:
        """The (key, value) pairs a joint solve pins for this edit: every context's own key, so the output
        the fit saw in each context, the bare question's included, is exactly what the memory gives there
        however other subjects' keys come and go."""
        label = self.update.label
        return [KeyValue(k, v, label) for k, v in zip(self.context_keys, self.context_values, strict=True)]


@register_editor
class RomeEditor(Editor):
    """Rank-one model editing (Meng et al. 2022) with r-ROME's consistent key and a real covariance."""

    name = "rome"
    config_cls = RomeConfig
    history_settings = frozenset({"refit_lost", "refit_max"})  # a refit needs an earlier live fact
    added_settings: ClassVar[Mapping[str, tuple[Any, frozenset[str]]]] = MappingProxyType(
        {
            "chat_contexts": (0, frozenset({"chat_context_turns", "chat_context_chars"})),
            "held_questions": (0, frozenset({"held_questions_ridge"})),
            "held_questions_ridge": (None, frozenset()),  # None: held up to `solve_ridge`, as before
            # True edits as before: no request carried held contexts before the setting existed
            "hold_contexts": (True, frozenset()),
            "scope": (None, frozenset()),  # None: served at every token, as before
        }
    )

    def __init__(self, config: RomeConfig | None = None) -> None:
        super().__init__(config)
        self.config: RomeConfig
        # per model: the key contexts (prefixes, chat contexts); per (model weights, module): C's Cholesky
        self._contexts: weakref.WeakKeyDictionary[nn.Module, list[KeyContext]] = weakref.WeakKeyDictionary()
        self._cholesky: dict[tuple[str, str, int], torch.Tensor] = {}

    def _compute_delta(self, model: nn.Module, tokenizer: Any, requests: list[EditRequest]) -> Delta:
        """Sequential edits, one rank-one update per (expanded) request; the model is left untouched."""
        return Delta.of(edit.update for edit in self.compute_edits(model, tokenizer, requests))

    def compute_edits(
        self,
        model: nn.Module,
        tokenizer: Any,
        requests: Sequence[EditRequest],
        taken: Collection[str] = frozenset(),
    ) -> list[RomeEdit]:
        """Like `compute_delta`, keeping k*, v* and fit diagnostics. Later requests see earlier ones through
        a temporary hook on the edited module, removed before returning. Synonym pairs skip the subject
        keys in `taken` (subjects other live facts hold: `claimed_pairs`)."""
        requests = check_requests(requests)
        if not requests:
            return []
        cfg = self.config
        module_name = cfg.module_name()
        try:
            module = model.get_submodule(module_name)
        except AttributeError as err:
            raise InvalidInput(f"model has no {module_name!r}; check RomeConfig.module_template") from err
        chol = self.cholesky_of(model, tokenizer, module_name)
        contexts = self.contexts_of(model, tokenizer)
        expanded = [
            (pair, label_for(request.subject, pair.subject))
            for request, pairs in zip(requests, claimed_pairs(requests, cfg.cluster_size, taken), strict=True)
            for pair in pairs
        ]
        edits: list[RomeEdit] = []

        def earlier_edits(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            for edit in edits:
                y = edit.update.apply_to_output(x, y)
            return y

        with add_to_output(module, earlier_edits):
            for request, label in expanded:
                edits.append(self._edit_one(model, tokenizer, module, chol, contexts, request, label))
        return edits

    def _compute_memory(
        self,
        model: nn.Module,
        tokenizer: Any,
        requests: list[EditRequest],
        current: Delta,
        history: list[EditRequest],
    ) -> Delta:
        """`current` with the requests written in: a subject's earlier ROME updates are replaced
        (`supersede`), and every other live ROME key keeps the value it has now (`preserve_keys`).

        Synonym pairs never write at a subject another live fact holds, and a pair the new requests claim
        replaces an older fact's pair at the same subject (`claimed_pairs`; the labels say which subject
        each update belongs to and is written at).

        v* is fitted on the memory *without* the values being replaced, never on top of them: on top, each
        new value would carry the old one's offset and the update would grow with every change of mind.
        With `preserve_keys` that memory is re-solved over the remaining keys first, because jointly solved
        updates lean on each other (near-parallel keys get large, opposite `up`s) and dropping one of them
        alone would leave its partner's correction acting on the subject: measured, that grew the update
        five-fold with every superseding edit.

        `history` is read only by `refit_lost`: every live key is recovered from its update's down row
        (`key_of`), but a fact fitted again needs its request.
        """
        memory = self._write(model, tokenizer, requests, current)
        if self.config.refit_lost and self.config.refit_max and history:
            memory = self._refit_lost(model, tokenizer, requests, memory, history)
        return memory

    def _refit_lost(
        self,
        model: nn.Module,
        tokenizer: Any,
        requests: list[EditRequest],
        memory: Delta,
        history: list[EditRequest],
    ) -> Delta:
        """`memory` with the earlier live facts it no longer answers written in again (`refit_lost`)."""
        new_subjects = {subject_key(r.subject) for r in requests}
        earlier = [r for r in live_requests(history, requests) if subject_key(r.subject) not in new_subjects]
        if not earlier:
            return memory
        with DeltaApplier(model).activate(memory):
            answered = answers_target(model, tokenizer, earlier)
            lost = [r for r, ok in zip(earlier, answered, strict=True) if not ok][: self.config.refit_max]
            if not lost:
                return memory
            log.info("ROME memory: fitting again %s", ", ".join(repr(r.subject) for r in lost))
            self._note_refitted([r.subject for r in lost])
            return self._write(model, tokenizer, lost, memory)

    def _write(self, model: nn.Module, tokenizer: Any, requests: list[EditRequest], current: Delta) -> Delta:
        """`current` with `requests` written in, as `_compute_memory` says; runs with `current` active."""
        cfg = self.config
        module_name = cfg.module_name()
        module = model.get_submodule(module_name)
        chol = self.cholesky_of(model, tokenizer, module_name)
        on_module = [u for u in current if u.module == module_name]
        new_subjects = {subject_key(r.subject) for r in requests}
        taken = (
            {label_subjects(u.label)[0] for u in on_module if u.label.startswith(LABEL_PREFIX)}
            - new_subjects
            - {""}
        )  # subjects other live facts hold (the shared context pins hold none)
        claimed = {
            subject_key(pair.subject)
            for pairs in claimed_pairs(requests, cfg.cluster_size, taken)
            for pair in pairs
        }

        def superseded(u: LowRankUpdate) -> bool:
            if not (cfg.supersede and u.module == module_name and u.label.startswith(LABEL_PREFIX)):
                return False
            subject, written_at = label_subjects(u.label)
            return subject in new_subjects or written_at in claimed

        kept = [u for u in current if not superseded(u)]
        if not cfg.preserve_keys:
            with DeltaApplier(model).activate(Delta.of(kept)):
                edits = self.compute_edits(model, tokenizer, requests, taken)
            new = [KeyValue(e.key, e.value, e.update.label) for e in edits]
            fixed = [u for u in kept if u.module == module_name]
            return Delta.of(kept + scoped(solve_stacked(module_name, module, new, fixed, chol), cfg.scope))

        # ROME's own rank-one updates on this module are re-solved; anything else is held fixed
        own, others = split_own(kept, module_name)
        fixed = [u for u in others if u.module == module_name]
        old = []
        if own:
            keys = keys_of(torch.cat([u.down for u in own], dim=0), chol)  # (in, n)
            values = module_output(module, keys, on_module)  # (out, n): what the user gets there now
            holding = [i for i, u in enumerate(own) if cfg.hold_pins and is_held(u.label)]
            if holding:  # ... except where the memory holds W₀ + fixed: asked for exactly that, every solve
                values[:, holding] = module_output(module, keys[:, holding], fixed)
            for i, u in enumerate(own):
                old.append(KeyValue(keys[:, i].to(u.down.device), values[:, i], u.label))
        without = solve_jointly(module_name, module, old, fixed, chol, cfg.repeat_cosine, cfg.solve_ridge)
        without = scoped(without, cfg.scope)  # the memory the new values are fitted on is served scoped
        questions = EVERYDAY_QUESTIONS[: cfg.held_questions]
        with DeltaApplier(model).activate(Delta.of(others + without)):
            edits = self.compute_edits(model, tokenizer, requests, taken)
            asked = question_inputs(model, tokenizer, module_name, questions) if questions else None
            contexts = [
                (text_inputs(model, tokenizer, module_name, r.held_contexts), label_for(r.subject))
                for r in requests
                if cfg.hold_contexts and r.held_contexts
            ]
        if cfg.pin_contexts:
            new = [pair for e in edits for pair in e.pinned()]
        else:
            new = [KeyValue(e.key, e.value, e.update.label) for e in edits]
        # inputs left as W₀ + fixed gives them, with their label and slack. The everyday questions come
        # first: where their tokens repeat a subject's context (the system prompt), that context's own pin
        # comes later, wins the repeat (`solve_jointly`) and keeps the solve's ridge however soft theirs is
        around: list[tuple[torch.Tensor, str, float | None]] = []
        if asked is not None:  # every token of the everyday questions (`held_questions`)
            around.append((asked, SHARED_LABEL, cfg.held_questions_ridge))
        for e in edits:  # the tokens around each subject
            around += [(e.after_subject, held_label(e.update.label), None)] if cfg.pin_template else []
            around += [(e.before_subject, SHARED_LABEL, None)] if cfg.pin_before else []
            head = cfg.pin_before and cfg.pin_subject_head
            around += [(e.subject_head, SHARED_LABEL, None)] if head else []
        # the recalled words: superseded with their fact
        around += [(inputs, held_label(label), None) for inputs, label in contexts]
        for inputs, label, slack in around:
            held = module_output(module, inputs.double().cpu().T, fixed).T  # (m, out)
            new += [KeyValue(x, v, label, slack) for x, v in zip(inputs, held, strict=True)]
        solved = scoped(
            solve_jointly(module_name, module, old + new, fixed, chol, cfg.repeat_cosine, cfg.solve_ridge),
            cfg.scope,
        )
        log.info(
            "ROME memory on %s: %d live keys (%d new, %d superseded)",
            module_name,
            len(solved),
            len(new),
            len(current) - len(kept),
        )
        return Delta.of(others + solved)

    def memory_diagnostics(self, model: nn.Module, tokenizer: Any, memory: Delta) -> dict[str, float]:
        """The memory's live keys on the edited module, how many of them it holds (`is_held`), and how far
        it has moved the output at those (`held_drift`: median, 90th percentile, largest)."""
        module_name = self.config.module_name()
        own, others = split_own(memory, module_name)
        if not own:
            return {}
        fixed = [u for u in others if u.module == module_name]
        chol = self.cholesky_of(model, tokenizer, module_name)
        drift = held_drift(model.get_submodule(module_name), own, fixed, chol)
        out: dict[str, float] = {"live_keys": len(own), "held_keys": drift.numel()}  # counts print as such
        if drift.numel():
            out["pin_drift_median"] = float(drift.median())
            out["pin_drift_p90"] = float(torch.quantile(drift, 0.9))
            out["pin_drift_max"] = float(drift.max())
        return out

    def _edit_one(
        self,
        model: nn.Module,
        tokenizer: Any,
        module: nn.Module,
        chol: torch.Tensor,
        contexts: list[KeyContext],
        request: EditRequest,
        label: str,
    ) -> RomeEdit:
        cfg = self.config
        module_name = cfg.module_name()
        subject_start, subject_end = request.subject_span()
        prompt = request.filled_prompt
        answer = join_target(prompt, request.target)[len(prompt) :] if cfg.pin_answer else ""
        inputs = subject_inputs(
            model, tokenizer, module_name, prompt, subject_end, contexts, answer, subject_start
        )
        context_keys = inputs.context_keys  # (n_contexts, in)
        key = context_keys.mean(dim=0)  # (in,) k*
        dtype = cast(torch.Tensor, module.weight).dtype
        with torch.no_grad():  # W_eff k for k* and every context key, hooks included
            outputs = module(torch.cat([key[None], context_keys]).to(dtype)).float()  # (1 + n, out)
        current = outputs[0]  # (out,) W_eff k*
        fit = compute_delta_v(model, tokenizer, cfg, request, contexts, base_norm=float(current.norm()))
        value = current + fit.delta.to(current.device)  # (out,) v*
        context_values = outputs[1:] + fit.delta.to(current.device)[None]  # (n, out)
        down = down_row(key, chol).float()  # (in,) C⁻¹k*/(k*ᵀC⁻¹k*), so that down · k* = 1
        up = (value - current).float()  # (out,)
        update = LowRankUpdate(
            module=module_name, down=down[None, :].to(key.device), up=up[:, None], label=label
        )
        log.info(
            "ROME edit %r -> %r: %d steps, NLL %.3f, |δ|/|Wk| %.2f",
            request.subject,
            request.target,
            fit.steps,
            fit.nll,
            float(up.norm() / current.norm()),
        )
        return RomeEdit(
            request,
            key,
            value,
            update,
            fit.nll,
            fit.steps,
            context_keys,
            context_values,
            inputs.after_subject,
            inputs.before_subject,
            inputs.subject_head,
        )

    def contexts_of(self, model: nn.Module, tokenizer: Any) -> list[KeyContext]:
        """The model's key contexts, made once per model: sampled prefixes, then chat contexts."""
        contexts = self._contexts.get(model)
        if contexts is None:
            cfg = self.config
            prefixes = (
                sample_prefixes(model, tokenizer, cfg.n_prefixes, cfg.prefix_tokens, cfg.prefix_seed)
                if cfg.n_prefixes > 0
                else []
            )
            contexts = [KeyContext(p) for p in prefixes]
            if cfg.chat_contexts > 0:
                if cfg.data_dir is None:
                    raise InvalidInput("ROME's chat contexts need RomeConfig.data_dir (their plain text)")
                paragraphs = interleaved_paragraphs(text_files(cfg.data_dir))
                chats = chat_contexts(
                    tokenizer,
                    paragraphs,
                    cfg.chat_contexts,
                    cfg.chat_context_turns,
                    cfg.chat_context_chars,
                    cfg.prefix_seed,
                )
                if not chats:
                    log.warning("the tokenizer's chat template takes no earlier turns; no ROME chat contexts")
                contexts += chats
            self._contexts[model] = contexts
        return contexts

    def cholesky_of(self, model: nn.Module, tokenizer: Any, module_name: str) -> torch.Tensor:
        """Lower Cholesky factor (float64, CPU) of C + ridge·mean(diag C)·I; computed once per weights."""
        cfg = self.config
        cache_key = (model_fingerprint(model), module_name, cfg.cov_chat_every)
        chol = self._cholesky.get(cache_key)
        if chol is None:
            c = second_moments(
                model,
                tokenizer,
                [module_name],
                n_tokens=cfg.cov_tokens,
                seq_len=cfg.cov_seq_len,
                data_dir=cfg.data_dir,
                cache_dir=cfg.cov_cache_dir,
                chat_every=cfg.cov_chat_every,
            )[module_name].double()  # (in, in)
            ridge = cfg.cov_ridge * float(c.diagonal().mean())
            eye = torch.eye(c.shape[0], dtype=c.dtype)
            chol, info = torch.linalg.cholesky_ex(c + ridge * eye)
            if int(info) != 0:  # too few tokens for a full-rank C: lean harder on the ridge
                log.warning("C for %s is singular; adding a 1e-3 relative ridge", module_name)
                chol = torch.linalg.cholesky(c + 1e-3 * float(c.diagonal().mean()) * eye)
            self._cholesky[cache_key] = chol
        return chol
