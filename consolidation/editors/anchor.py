"""The locality anchor of the gradient editors: keep the answers to unrelated questions where they were.

Why the answer's first tokens and not every position: a preference edit is asked in chat form, so the
chat template's tail ("<|im_end|>\\n<|im_start|>assistant\\n") precedes every answer the adapter is trained
on. Trained on the target alone, the adapter learns to push the answer position of *any* chat prompt towards
the targets: measured, 70% of the neutral prompts' next tokens changed after 30 LoRA edits. The question
tokens themselves barely move, so a KL averaged over every position (the first anchor tried) was diluted
~30-fold and did not help. This anchor measures KL exactly where the damage is: the first answer tokens of
a few everyday chat questions, teacher-forced on the answer the model gave before the edit.

The reference is taken once per fit, from the model as the editor receives it (a user's other updates
included); each step then costs one extra batched forward pass over short prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from consolidation.editors.everyday import EVERYDAY_QUESTIONS
from consolidation.metrics import chat_batch

# The first 24 everyday questions (trivia and short requests): few, so each fit step can afford them.
ANCHOR_QUESTIONS = EVERYDAY_QUESTIONS[:24]


class AnswerAnchor:
    """KL(reference ‖ edited) of next-token distributions at the first `answer_tokens` answer positions of
    `questions` asked in chat form, averaged over questions and positions.

    The rows are left-padded so every row's answer positions are the batch's last columns, and only those
    columns go through the LM head (`logits_to_keep`). With `per_step` = b, each call scores the next b
    questions in turn: a fit of many steps still sees every question, at the cost of b rows per step.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        questions: Sequence[str] = ANCHOR_QUESTIONS,
        answer_tokens: int = 4,
        per_step: int | None = None,
    ) -> None:
        if answer_tokens < 1 or not questions:
            raise ValueError("AnswerAnchor needs at least one question and one answer token")
        self.keep = answer_tokens
        self.per_step = min(per_step or len(questions), len(questions))
        self.calls = 0
        with torch.no_grad():
            enc = chat_batch(tokenizer, questions)  # left-padded: the answer positions are the last columns
            ids, mask = enc["input_ids"], enc["attention_mask"]
            for _ in range(answer_tokens - 1):  # the model's own greedy answer, teacher-forced from here on
                nxt = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1].argmax(-1)
                ids = torch.cat([ids, nxt[:, None]], dim=1)
                mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], dim=1)
            self.ids, self.mask = ids, mask  # (N, T)
            self.ref = self._logprobs(model, torch.arange(len(questions)))  # (N, answer_tokens, V)

    def _logprobs(self, model: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        ids, mask = self.ids[rows], self.mask[rows]
        width = int(mask.sum(dim=1).max())  # drop the columns that are padding in every chosen row
        out = model(input_ids=ids[:, -width:], attention_mask=mask[:, -width:], logits_to_keep=self.keep)
        return torch.log_softmax(out.logits.float(), dim=-1)

    def __call__(self, model: nn.Module) -> torch.Tensor:
        """Mean KL over this call's questions and their answer positions, differentiable through whatever
        `model` adds."""
        n = len(self.ids)
        rows = (torch.arange(self.per_step) + self.calls * self.per_step) % n
        self.calls += 1
        ref = self.ref[rows]
        return (ref.exp() * (ref - self._logprobs(model, rows))).sum(-1).mean()
