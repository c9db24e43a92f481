"""The stability run's checkpoints and the edited matrices' condition number."""

from __future__ import annotations

import torch
from torch import nn

from eval.stability import StabilityPlan, checkpoints, condition_numbers
from memory.weights.delta import Delta, LowRankUpdate


def test_checkpoints_every_k_and_the_last() -> None:
    assert checkpoints(StabilityPlan(edits=10, every=3)) == [3, 6, 9, 10]
    assert checkpoints(StabilityPlan(edits=9, every=3)) == [3, 6, 9]
    assert checkpoints(StabilityPlan(edits=2, every=5)) == [2]


def test_condition_number_of_the_edited_matrix() -> None:
    model = nn.Sequential(nn.Linear(3, 3, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.diag(torch.tensor([4.0, 2.0, 1.0])))
    assert condition_numbers(model, Delta()) == {}
    # ΔW adds 4 to the last diagonal entry: singular values 5, 4, 2 → cond 2.5
    update = LowRankUpdate("0", down=torch.tensor([[0.0, 0.0, 1.0]]), up=torch.tensor([[0.0], [0.0], [4.0]]))
    conds = condition_numbers(model, Delta.of([update]))
    assert conds == {"0": conds["0"]} and abs(conds["0"] - 2.5) < 1e-5
