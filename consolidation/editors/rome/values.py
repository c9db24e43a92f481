"""δ (hence v*): the change to the edited module's output at the subject's last token that makes the model
emit the target, while "{subject} is a" keeps its next-token distribution (ROME's compute_v).

Speed: the layers below the edited one do not depend on δ, so one no-grad pass records what every decoder
block from layer L upward receives, and each optimisation step replays only those blocks, taking logits at
the positions that predict target tokens (and the KL positions) only. `upward_only=False` runs the full model
instead; the two agree (tested). Gradients go to δ alone via `torch.autograd.grad`: no parameter ever gets a
`.grad`, no `requires_grad` flag is touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.rome.keys import contexts_for, pad_batch, token_at, token_offsets
from consolidation.editors.rome.tracing import add_to_output
from memory.errors import InvalidInput

log = logging.getLogger(__name__)


def join_target(prompt: str, target: str) -> str:
    """prompt + target with one space at the seam unless either side already has whitespace there."""
    if prompt[-1:].isspace() or target[:1].isspace():
        return prompt + target
    return prompt + " " + target


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


def build_batch(tokenizer: Any, request: EditRequest, prefixes: Sequence[str], cfg: RomeConfig) -> Batch:
    """Prompt+target rows (bare and prefixed) tokenized together, so the target's leading space and merges
    are exactly what the model will see, followed by the KL rows."""
    prompt = request.filled_prompt
    _, subject_end = request.subject_span()
    rows: list[list[int]] = []
    subject_index: list[int] = []
    target_rows: list[int] = []
    predict_pos: list[int] = []
    target_ids: list[int] = []
    contexts = contexts_for(prompt, prefixes) if cfg.use_prefixes_for_v else [("", 0)]
    for row, (prefix, shift) in enumerate(contexts):
        text = prefix + prompt
        ids, offsets = token_offsets(tokenizer, join_target(text, request.target))
        subject_index.append(token_at(offsets, shift + subject_end))
        # every token reaching past the prompt is a target token (one straddling the seam included)
        positions = [i for i, (s, e) in enumerate(offsets) if e > len(text) and e > s]
        if not positions or positions[0] == 0:
            raise InvalidInput(f"target {request.target!r} adds no predictable token after {text!r}")
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

    handles = [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in layers]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


class _Forward:
    """Logits at chosen (row, position) pairs as a function of whatever the δ hook adds: either by replaying
    the decoder blocks from layer L upward on recorded inputs, or by running the whole model."""

    def __init__(self, model: nn.Module, cfg: RomeConfig, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.model, self.cfg, self.ids, self.mask = model, cfg, ids, mask
        blocks = model.get_submodule(cfg.layers_path)
        assert isinstance(blocks, nn.ModuleList), (
            f"{cfg.layers_path} is {type(blocks).__name__}, not a ModuleList"
        )
        self.layers: list[nn.Module] = list(blocks)[cfg.layer :]
        self.records: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        with torch.no_grad():
            if cfg.upward_only:
                with _record_layer_inputs(model, self.layers) as records:
                    self.init_logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                if len(records) != len(self.layers):
                    raise RuntimeError(
                        f"recorded {len(records)} inputs for {len(self.layers)} layers under "
                        f"{cfg.layers_path!r}; set upward_only=False for this architecture"
                    )
                self.records = records
            else:
                self.init_logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits

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
        picked = self.model.get_submodule(self.cfg.final_norm_path)(hidden[rows, positions])  # (P, H)
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
    prefixes: Sequence[str],
    base_norm: float,
) -> ValueResult:
    """Optimise δ: NLL of every target token in every context + kl_factor·KL(unedited ‖ edited) on the KL
    prompts + weight decay on ‖δ‖, with ‖δ‖ clamped to clamp_norm_factor·`base_norm` (‖W_eff k*‖)."""
    module = model.get_submodule(cfg.module_name())
    device = next(model.parameters()).device
    batch = build_batch(tokenizer, request, prefixes, cfg)
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
        forward = _Forward(model, cfg, ids, mask)
        init_kl_logp = F.log_softmax(forward.init_logits[kl_rows, kl_pos].float(), dim=-1).detach()  # (K, V)
        per_row_counts = torch.bincount(target_rows, minlength=batch.n_target_rows).float()
        nll_value, step = float("inf"), 0
        with add_to_output(module, _delta_adder(delta, batch.subject_index)):
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
