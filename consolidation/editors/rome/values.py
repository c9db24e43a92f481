"""δ (hence v*): the change to the edited module's output at the subject's last token that makes the model
emit the target, while "{subject} is a" keeps its next-token distribution (ROME's compute_v).

Speed: the layers below the edited one do not depend on δ, so one no-grad pass records what every decoder
block from layer L upward receives, and each optimisation step replays only those blocks, taking logits at
the positions that predict target tokens (and the KL positions) only. `upward_only=False` runs the full model
instead; the two agree (tested). Gradients go to δ alone via `torch.autograd.grad`: no parameter ever gets a
`.grad`, no `requires_grad` flag is touched.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from consolidation.editors.base import EditRequest, join_target
from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.rome.contexts import KeyContext, contexts_for
from consolidation.editors.rome.keys import pad_batch, token_at, token_offsets
from consolidation.editors.rome.tracing import add_to_output
from consolidation.hooks import this_thread_only
from memory.errors import InvalidInput

log = logging.getLogger(__name__)


def with_target(tokenizer: Any, text: str, target: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """Ids and character offsets of `text` + `target` (`join_target`), and the indices of the target's
    tokens: every token reaching past `text`, one straddling the seam included. Why one place: the v* fit
    and the recall check (`recall.answers_target`) must read the same tokens as the target's.

    Raises `InvalidInput` when the target adds no token the model could predict after `text`."""
    ids, offsets = token_offsets(tokenizer, join_target(text, target))
    positions = [i for i, (s, e) in enumerate(offsets) if e > len(text) and e > s]
    if not positions or positions[0] == 0:
        raise InvalidInput(f"target {target!r} adds no predictable token after {text!r}")
    return ids, offsets, positions


@dataclass(frozen=True)
class Batch:
    """Every row the loss looks at, right-padded, with the positions each term reads."""

    ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T)
    subject_index: torch.Tensor  # (B,) where δ is added in each row
    target_rows: torch.Tensor  # (P,) row of each target token
    predict_pos: torch.Tensor  # (P,) position whose logits predict that token
    target_ids: torch.Tensor  # (P,) the token
    n_target_rows: int  # rows 0..n-1 are prompt+target rows, the rest are KL rows
    kl_pos: torch.Tensor  # (K,) last position of each KL row (rows n..B-1)


def build_batch(
    tokenizer: Any, request: EditRequest, contexts: Sequence[KeyContext], cfg: RomeConfig
) -> Batch:
    """Prompt+target rows (bare and in each key context) tokenized together, so the target's leading space
    and merges are exactly what the model will see, followed by the KL rows."""
    prompt = request.filled_prompt
    _, subject_end = request.subject_span()
    rows: list[list[int]] = []
    subject_index: list[int] = []
    target_rows: list[int] = []
    predict_pos: list[int] = []
    target_ids: list[int] = []
    placed = contexts_for(prompt, subject_end, contexts if cfg.use_prefixes_for_v else [])
    for row, (text, shift) in enumerate(placed):
        ids, offsets, positions = with_target(tokenizer, text, request.target)
        subject_index.append(token_at(offsets, shift + subject_end))
        rows.append(ids)
        target_rows += [row] * len(positions)
        predict_pos += [p - 1 for p in positions]
        target_ids += [ids[p] for p in positions]
    n_target_rows = len(rows)
    kl_pos: list[int] = []
    for template in cfg.kl_prompts:
        text = template.format(request.subject)
        ids, offsets = token_offsets(tokenizer, text)
        subject_end_kl = template.index("{}") + len(request.subject)
        rows.append(ids)
        subject_index.append(token_at(offsets, subject_end_kl))
        kl_pos.append(len(ids) - 1)
    ids_t, mask_t = pad_batch(tokenizer, rows)
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return Batch(
        ids=ids_t,
        mask=mask_t,
        subject_index=as_long(subject_index),
        target_rows=as_long(target_rows),
        predict_pos=as_long(predict_pos),
        target_ids=as_long(target_ids),
        n_target_rows=n_target_rows,
        kl_pos=as_long(kl_pos),
    )


@contextmanager
def _record_layer_inputs(
    model: nn.Module, layers: Sequence[nn.Module]
) -> Iterator[list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    """Within the block, a forward pass records each layer's (args, kwargs), in order."""
    records: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        records.append((args, dict(kwargs)))

    scoped = this_thread_only(hook)
    handles = [layer.register_forward_pre_hook(scoped, with_kwargs=True) for layer in layers]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


CACHE_KWARGS = ("cache", "past_key_values")  # what a decoder block calls its KV cache, newest name first


def cache_kwarg(model: Any) -> str:
    """The name `model.forward` takes its KV cache by (`cache` since transformers 5.2x)."""
    params = inspect.signature(model.forward).parameters
    return next((n for n in CACHE_KWARGS if n in params), CACHE_KWARGS[-1])


class _FrozenPrefix:
    """Stands in for the KV cache while replaying: every layer's keys and values of the tokens before the
    subject (which δ cannot reach, attention being causal) go in front of the new ones. It stores nothing,
    so each optimisation step sees the same prefix and no autograd graph outlives its step."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self.keys, self.values = keys, values

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.cat([self.keys[layer_idx], key_states], dim=-2),
            torch.cat([self.values[layer_idx], value_states], dim=-2),
        )


def _split_at_subject(
    ids: torch.Tensor, mask: torch.Tensor, subject_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each right-padded row cut before its subject token: the heads left-padded to one width P, the tails
    (subject onward) right-padded, so every subject lands in column P. Returns head ids, tail ids, the
    (B, P+Q) mask over both, and the position ids of head and tail (real tokens keep their positions).
    Padding is masked out, so its id (0) never matters."""
    lengths = mask.sum(dim=1).tolist()
    cuts = subject_index.tolist()
    width_head, width_tail = max(cuts), max(n - c for n, c in zip(lengths, cuts, strict=True))
    b = ids.shape[0]
    head = torch.zeros((b, width_head), dtype=ids.dtype)
    tail = torch.zeros((b, width_tail), dtype=ids.dtype)
    full_mask = torch.zeros((b, width_head + width_tail), dtype=mask.dtype)
    for row, (n, c) in enumerate(zip(lengths, cuts, strict=True)):
        head[row, width_head - c :] = ids[row, :c]
        tail[row, : n - c] = ids[row, c:n]
        full_mask[row, width_head - c : width_head + n - c] = 1
    positions = (full_mask.cumsum(dim=1) - 1).clamp_min(0)
    return head, tail, full_mask, positions[:, :width_head], positions[:, width_head:]


class _Forward:
    """Logits at chosen (row, position) pairs as a function of whatever the δ hook adds.

    Three ways, fastest first, all equal up to float rounding (tested): replay only the decoder blocks from
    layer L upward and only the tokens from each row's subject onward, the earlier tokens' keys and values
    being fixed (`reuse_prefix`); replay the blocks from layer L upward on whole rows (`upward_only`); or
    run the whole model. Positions are always given in the coordinates of the right-padded batch.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: RomeConfig,
        ids: torch.Tensor,
        mask: torch.Tensor,
        subject_index: torch.Tensor,
    ) -> None:
        self.model, self.cfg, self.ids, self.mask = model, cfg, ids, mask
        blocks = model.get_submodule(cfg.layers_path)
        assert isinstance(blocks, nn.ModuleList), (
            f"{cfg.layers_path} is {type(blocks).__name__}, not a ModuleList"
        )
        self.layers: list[nn.Module] = list(blocks)[cfg.layer :]
        self.records: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.offset = torch.zeros_like(subject_index)  # (B,) batch column minus replayed column, per row
        self.subject_index = subject_index  # (B,) where δ goes, in replayed columns
        with torch.no_grad():
            if not cfg.upward_only:
                self._logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            elif cfg.reuse_prefix and int(subject_index.max()) > 0:  # some row has a head to keep
                # (a row whose subject opens it, as "{} is a" without a BOS token, just has an empty head)
                self._record_tails(subject_index)
            else:
                self._logits = self._record(input_ids=ids, attention_mask=mask, use_cache=False)

    def _record(self, **inputs: Any) -> torch.Tensor:
        with _record_layer_inputs(self.model, self.layers) as records:
            logits: torch.Tensor = self.model(**inputs).logits
        if len(records) != len(self.layers):
            raise RuntimeError(
                f"recorded {len(records)} inputs for {len(self.layers)} layers under "
                f"{self.cfg.layers_path!r}; set upward_only=False for this architecture"
            )
        self.records = records
        return logits

    def _record_tails(self, subject_index: torch.Tensor) -> None:
        """One pass over the heads (tokens before each subject) keeps their keys and values; one pass over
        the tails records what each replayed block receives, with the cache swapped for a frozen prefix."""
        head, tail, full_mask, head_pos, tail_pos = _split_at_subject(self.ids, self.mask, subject_index)
        device = self.ids.device
        width_head = head.shape[1]
        arg = cache_kwarg(self.model)
        out = self.model(
            input_ids=head.to(device),
            attention_mask=full_mask[:, :width_head].to(device),
            position_ids=head_pos.to(device),
            use_cache=True,
        )
        cache = getattr(out, "cache", None) or out.past_key_values
        keys = [layer.keys for layer in cache.layers]  # update() concatenates: these stay the heads' own
        values = [layer.values for layer in cache.layers]
        self._logits = self._record(
            input_ids=tail.to(device),
            attention_mask=full_mask.to(device),
            position_ids=tail_pos.to(device),
            use_cache=True,
            **{arg: cache},
        )
        frozen = _FrozenPrefix(keys, values)
        for _, kwargs in self.records:
            # transformers 5.2x names a block's cache argument `cache`; earlier releases `past_key_values`
            name = next((n for n in CACHE_KWARGS if n in kwargs), None)
            if name is None:
                raise RuntimeError(f"decoder blocks take none of {CACHE_KWARGS}; set reuse_prefix=False")
            kwargs[name] = frozen
        self.offset = subject_index.clone()
        self.subject_index = torch.zeros_like(subject_index)

    def initial_logits_at(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(P, V) logits of the unedited pass at (rows[i], positions[i])."""
        return self._logits[rows, positions - self.offset.to(rows.device)[rows]]

    def logits_at(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(P, V) logits at (rows[i], positions[i]) under the current hooks."""
        if not self.cfg.upward_only:
            logits = self.model(input_ids=self.ids, attention_mask=self.mask, use_cache=False).logits
            return logits[rows, positions]  # (P, V)
        hidden: torch.Tensor | None = None
        for layer, (args, kwargs) in zip(self.layers, self.records, strict=True):
            if hidden is None:  # the first replayed block gets exactly what it got in the recorded pass
                out = layer(*args, **kwargs)
            elif args:
                out = layer(hidden, *args[1:], **kwargs)
            else:
                out = layer(**{**kwargs, "hidden_states": hidden})
            hidden = out[0] if isinstance(out, tuple) else out  # (B, T, H)
        assert hidden is not None, "no decoder layers above the edited one"
        local = positions - self.offset.to(rows.device)[rows]
        picked = self.model.get_submodule(self.cfg.final_norm_path)(hidden[rows, local])  # (P, H)
        head: Any = self.model.get_output_embeddings()  # type: ignore[operator]
        return head(picked)  # (P, V)


def _delta_adder(
    delta: torch.Tensor, subject_index: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Output transform adding δ (out,) at each row's subject position of the edited module's output."""

    def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # y: (B, T, out)
        onehot = F.one_hot(subject_index.to(y.device), y.shape[1]).to(y.dtype)  # (B, T)
        return y + onehot[:, :, None] * delta.to(y.dtype)[None, None, :]

    return add


@dataclass(frozen=True)
class ValueResult:
    delta: torch.Tensor  # (out,) δ, so v* = W_eff k* + δ
    nll: float  # mean target NLL (nats/token) at the returned δ
    steps: int  # optimisation steps taken


def compute_delta_v(
    model: nn.Module,
    tokenizer: Any,
    cfg: RomeConfig,
    request: EditRequest,
    contexts: Sequence[KeyContext],
    base_norm: float,
) -> ValueResult:
    """Optimise δ: NLL of every target token in every context + kl_factor·KL(unedited ‖ edited) on the KL
    prompts + weight decay on ‖δ‖, with ‖δ‖ clamped to clamp_norm_factor·`base_norm` (‖W_eff k*‖)."""
    module = model.get_submodule(cfg.module_name())
    device = next(model.parameters()).device
    batch = build_batch(tokenizer, request, contexts, cfg)
    ids, mask = batch.ids.to(device), batch.mask.to(device)
    target_rows, predict_pos = batch.target_rows.to(device), batch.predict_pos.to(device)
    target_ids = batch.target_ids.to(device)
    kl_rows = torch.arange(batch.n_target_rows, ids.shape[0], device=device)
    kl_pos = batch.kl_pos.to(device)
    rows = torch.cat([target_rows, kl_rows])  # (P + K,)
    positions = torch.cat([predict_pos, kl_pos])
    n_target = len(target_ids)
    out_features = int(cast(torch.Tensor, module.weight).shape[0])
    delta = torch.zeros(out_features, device=device, requires_grad=True)  # (out,)
    optimizer = torch.optim.Adam([delta], lr=cfg.v_lr)
    max_norm = cfg.clamp_norm_factor * base_norm
    with torch.inference_mode(False), torch.enable_grad():
        forward = _Forward(model, cfg, ids, mask, batch.subject_index.to(device))
        init_kl_logp = F.log_softmax(forward.initial_logits_at(kl_rows, kl_pos).float(), dim=-1).detach()
        per_row_counts = torch.bincount(target_rows, minlength=batch.n_target_rows).float()
        nll_value, step = float("inf"), 0
        with add_to_output(module, _delta_adder(delta, forward.subject_index)):
            for step in range(cfg.v_steps + 1):
                logits = forward.logits_at(rows, positions).float()  # (P + K, V)
                logp = F.log_softmax(logits[:n_target], dim=-1)  # (P, V)
                token_nll = -logp.gather(1, target_ids[:, None])[:, 0]  # (P,)
                row_nll = torch.zeros(batch.n_target_rows, device=device).index_add(0, target_rows, token_nll)
                nll = (row_nll / per_row_counts).mean()
                kl_logp = F.log_softmax(logits[n_target:], dim=-1)  # (K, V)
                kl = F.kl_div(kl_logp, init_kl_logp, log_target=True, reduction="batchmean")
                decay = cfg.v_weight_decay * delta.norm() / base_norm**2
                loss = nll + cfg.kl_factor * kl + decay
                nll_value = float(nll.detach())
                greedy_ok = bool((logp.argmax(dim=-1) == target_ids).all())
                if nll_value < cfg.nll_stop or (
                    cfg.early_stop_on_greedy and greedy_ok and nll_value < cfg.greedy_nll_stop
                ):
                    break
                if step == cfg.v_steps:
                    log.info("v* for %r: step budget spent at NLL %.3f", request.target, nll_value)
                    break
                (grad,) = torch.autograd.grad(loss, [delta])
                delta.grad = grad
                optimizer.step()
                with torch.no_grad():
                    norm = delta.norm()
                    if norm > max_norm:
                        delta.mul_(max_norm / norm)
    log.debug(
        "v* for %r: %d steps, NLL %.3f, |δ| %.2f",
        request.target,
        step,
        nll_value,
        float(delta.detach().norm()),
    )
    return ValueResult(delta=delta.detach().clone(), nll=nll_value, steps=step)
