"""The stability run's checkpoints, the edited matrices' condition number and the preferences it lost."""

from __future__ import annotations

import torch
from torch import nn

from consolidation.drift.report import Check, DriftReport
from eval.drift_run import report_row
from eval.stability import (
    COLUMNS,
    StabilityPlan,
    alike_subjects,
    checkpoints,
    condition_numbers,
    lost_by_likeness,
    missed,
    missed_text,
    table_columns,
)
from eval.upqa import UpqaRecord
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


def _record(index: int, subject: str, target: str) -> UpqaRecord:
    question = f"What's my {subject}?"
    return UpqaRecord(index, question, subject, target, None, None, (question,), (subject,), (target,))


def test_missed_names_each_live_preference_not_answered_with_its_edit_number() -> None:
    records = [_record(10, "hobby", "Chess"), _record(11, "pet", "Cat"), _record(12, "hobby", "Running")]
    # live: pet (edit 2) and hobby's later value (edit 3); edit_scores lists them in that order
    scored = [
        {"efficacy": {"answer": "A dog.", "hit": False}},
        {"efficacy": {"answer": "Running, mostly.", "hit": True}},
    ]
    assert missed(records, scored) == [
        {"edit": 2, "record": 11, "subject": "pet", "target": "Cat", "answer": "A dog.", "alike": []}
    ]
    scored[1]["efficacy"]["hit"] = False
    assert [m["edit"] for m in missed(records, scored)] == [2, 3]


def test_missed_text_lists_the_lost_oldest_first_and_says_when_none_are() -> None:
    row = {
        "edits": 30,
        "live": 20,
        "missed": [
            {"edit": 9, "subject": "pet", "target": "Cat", "answer": "I have a dog " + "and more " * 20},
            {"edit": 4, "subject": "hobby", "target": "Chess", "answer": "Running."},
        ],
    }
    text = missed_text(row)
    assert text.startswith("Not answered after 30 edits: 2 of 20 live preferences")
    assert text.index("edit 4: hobby = 'Chess'") < text.index("edit 9: pet = 'Cat'")
    assert "…" in text and len(max(text.splitlines(), key=len)) < 120  # long answers are clipped
    assert missed_text({"edits": 30, "live": 20, "missed": []}).endswith("0 of 20 live preferences.\n")


def test_an_editors_own_figures_become_columns_of_its_table() -> None:
    """`memory_diagnostics` figures are appended after the common columns, by name and in the order first
    seen; a checkpoint without one (an older row, another editor) shows a dash."""
    rows = [
        {"edits": 30, "retention": 1.0},
        {"edits": 60, "retention": 0.9, "diagnostics": {"live_keys": 400.0, "pin_drift_median": 0.02}},
        {"edits": 90, "retention": 0.8, "diagnostics": {"live_keys": 610.0, "held_keys": 300.0}},
    ]
    headers, cells = table_columns(rows)
    assert headers == [h for _, h in COLUMNS] + ["live keys", "pin drift median", "held keys"]
    assert cells[0][len(COLUMNS) :] == [None, None, None]
    assert cells[1][len(COLUMNS) :] == [400.0, 0.02, None]
    assert cells[2][:3] == [90, None, 0.8] and cells[2][len(COLUMNS) :] == [610.0, None, 300.0]
    assert table_columns([{"edits": 1}])[0] == [h for _, h in COLUMNS]  # no figures, no extra columns


def test_subjects_that_share_a_word_are_alike_whatever_their_case() -> None:
    alike = alike_subjects(
        ["Food preference", "music preference", "pet", "Education", "education level", "pet"]
    )
    assert alike == {
        "food preference": ["music preference"],
        "music preference": ["food preference"],
        "pet": [],
        "education": ["education level"],
        "education level": ["education"],
    }


def test_losses_are_split_by_whether_a_subject_has_an_alike_one() -> None:
    records = [
        _record(1, "food preference", "Sushi"),
        _record(2, "music preference", "Jazz"),
        _record(3, "pet", "Cat"),
        _record(4, "hobby", "Chess"),
    ]
    scored = [
        {"efficacy": {"answer": a, "hit": a.startswith("yes")}} for a in ("Jazz.", "yes", "A dog.", "yes")
    ]
    lost = missed(records, scored)
    assert [(m["subject"], m["alike"]) for m in lost] == [
        ("food preference", ["music preference"]),
        ("pet", []),
    ]
    split = lost_by_likeness(alike_subjects([r.subject for r in records]), lost)
    assert split == {"alike": {"live": 2, "lost": 1}, "distinct": {"live": 2, "lost": 1}}
    text = missed_text({"edits": 4, "live": 4, "missed": lost, "lost_by_likeness": split})
    said = (
        "2 of 4 live preferences (1 of the 2 subjects that share a word with another live one,"
        " 1 of the other 2)"
    )
    assert said in text
    assert "food preference = 'Sushi'; answers 'Jazz.'; alike: music preference" in text
    assert text.splitlines()[-1].endswith("answers 'A dog.'")  # no alike subject, nothing added


def test_a_row_keeps_the_worst_module_of_each_per_module_check() -> None:
    """Norm growth and a scope's reach are checked per edited module; a table row shows the worst of each."""

    def check(name: str, value: float, passed: bool = True) -> Check:
        return Check(
            name=name, candidate=value, base=None, rule="", passed=passed, reason="" if passed else "x"
        )

    report = DriftReport(
        checks=[
            check("perplexity", 30.4),
            check("norm_growth:a", 0.2),
            check("norm_growth:b", 0.5, passed=False),
            check("scope_open_share:a", 0.003),
            check("scope_open_share:b", 0.001),
        ],
        seconds=2.0,
    )
    row = report_row(30, report)
    assert row["norm_growth"] == 0.5 and row["scope_open_share"] == 0.003 and row["perplexity"] == 30.4
    assert row["passed"] is False and row["reasons"] == report.reasons and row["edits"] == 30
    assert not any(":" in key for key in row)
