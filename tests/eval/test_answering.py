"""Batches respect both the row limit and the prompt-token budget."""

from __future__ import annotations

from eval.answering import Decoding, _batches


def test_batches_keep_the_token_budget_and_the_row_limit() -> None:
    lengths = [100] * 5 + [3000] * 5
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = _batches(lengths, order, Decoding(max_batch=4, max_batch_tokens=6000))
    assert sorted(i for b in batches for i in b) == list(range(10))  # every prompt exactly once
    for batch in batches:
        assert len(batch) <= 4 and max(lengths[i] for i in batch) * len(batch) <= 6000
    assert [len(b) for b in batches] == [4, 2, 2, 2]  # 100 + 3000 pads to 2 × 3000


def test_a_prompt_over_the_budget_still_gets_a_batch_of_its_own() -> None:
    assert _batches([9000, 10], [1, 0], Decoding(max_batch_tokens=5000)) == [[1], [0]]
