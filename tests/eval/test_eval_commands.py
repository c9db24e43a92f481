"""`imprint eval upqa | prefeval | stability` as a researcher runs them: the real model, chromadb and edits,
results folders that resume, and bad input refused before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import Settings
from tests.api.test_cli import imprint
from tests.eval.judge_server import serving

PNG = b"\x89PNG\r\n\x1a\n"


def _data() -> Path:
    data_dir = Settings().data_dir
    assert data_dir is not None, "tests need the data directory (../shared/data or IMPRINT_DATA_DIR)"
    return data_dir


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_upqa_compares_every_method_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "upqa"
    args = [
        "eval", "upqa", "--data", str(_data() / "upqa/UPQA/balanced_subset.json"),
        "--methods", "none,prompt,rag,edit:rome,hybrid", "--limit", "2", "--out", str(out),
    ]  # fmt: skip
    res = imprint(tmp_path, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["key"]: r for r in _rows(out / "items.jsonl")}
    assert len(rows) == 10
    for row in rows.values():
        assert all(row[q]["answer"] and isinstance(row[q]["hit"], bool) for q in ("efficacy", "implicit"))
    statement = '"I like to dance at the club."'
    assert rows["prompt|0"]["efficacy"]["memory_lines"] == [statement]
    assert rows["none|0"]["efficacy"]["memory_lines"] == []
    assert rows["rag|0"]["memory"]["observations"] >= 1  # the extractor stored the statement
    assert rows["rag|0"]["efficacy"]["memory_lines"] == [statement]  # and recall brought it back
    edit, hybrid = rows["edit:rome|0"], rows["hybrid:rome|0"]
    assert edit["memory"]["edit_seconds"] > 0
    assert hybrid["memory"]["edit_seconds"] == edit["memory"]["edit_seconds"]  # one edit, shared
    assert edit["efficacy"]["answer"] != rows["none|0"]["efficacy"]["answer"]  # the weights changed it
    summary = json.loads((out / "summary.json").read_text())
    assert [s["method"] for s in summary["summaries"]] == [
        "none",
        "prompt",
        "rag",
        "edit:rome",
        "hybrid:rome",
    ]
    assert all(s["efficacy"]["n"] == 2 for s in summary["summaries"])
    assert summary["provenance"]["judge"].startswith("TargetJudge")
    assert "| method | records | efficacy |" in (out / "summary.md").read_text()
    assert (out / "upqa.png").read_bytes().startswith(PNG)

    again = imprint(tmp_path, *args)  # everything is done: nothing is asked or edited again
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(_rows(out / "items.jsonl")) == 10
    other = imprint(tmp_path, *args, "--cluster-size", "3")
    assert other.returncode == 2 and "other settings" in other.stderr
    retuned = imprint(tmp_path, *args, "--set", "v_steps=39")  # the editors' settings are in the plan too
    assert retuned.returncode == 2 and "other settings" in retuned.stderr
    assert json.loads((out / "plan.json").read_text())["edits"] == "memory"  # edits as served: nothing held
    holding = imprint(tmp_path, *args, "--hold-statements")  # edits that hold the statement are another run
    assert holding.returncode == 2 and "holding the statement as recalled" in holding.stderr


@pytest.mark.slow
def test_upqa_takes_every_kth_record_and_grows_by_record(tmp_path: Path) -> None:
    out = tmp_path / "upqa"
    data_file = _data() / "upqa/UPQA/balanced_subset_200.json"
    data = ["eval", "upqa", "--data", str(data_file), "--methods", "none"]
    res = imprint(tmp_path, *data, "--stride", "50", "--limit", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(r["key"] for r in _rows(out / "items.jsonl")) == ["none|0", "none|50"]
    assert (out / "summary.md").read_text().startswith("UPQA, 2 records: 0, 50;")
    wider = imprint(tmp_path, *data, "--offset", "50", "--stride", "50", "--out", str(out))
    assert wider.returncode == 0, wider.stderr[-3000:]  # the same plan: record 50 is not asked again
    keys = sorted(r["key"] for r in _rows(out / "items.jsonl"))
    assert keys == ["none|0", "none|100", "none|150", "none|50"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summaries"][0]["efficacy"]["n"] == 3  # records 50, 100 and 150: the latest run's
    bad = imprint(tmp_path, *data, "--stride", "0", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and not (tmp_path / "bad").exists()
    past_the_end = imprint(tmp_path, *data, "--offset", "200", "--out", str(tmp_path / "bad"))
    assert past_the_end.returncode == 2 and "no record at offset 200" in past_the_end.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_prefeval_turns_sets_and_methods(tmp_path: Path) -> None:
    out = tmp_path / "prefeval"
    args = [
        "eval", "prefeval", "--data-dir", str(_data() / "prefeval"), "--turns", "0,2",
        "--sets", "explicit,choice", "--methods", "none,prompt,rag,edit:rome", "--limit", "2",
        "--filler-chars", "200", "--out", str(out),
    ]  # fmt: skip
    res = imprint(tmp_path, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["key"]: r for r in _rows(out / "items.jsonl")}
    answers = {k: r for k, r in rows.items() if r.get("method")}
    assert len(answers) == 4 * 2 * 2 * 2 and sum(k.startswith("reveal|") for k in rows) == 2
    # what each method sees: system, the reveal (statement and the model's reply), 2 per filler turn, question
    assert answers["none|explicit|0|0"]["context_messages"] == 2
    assert answers["prompt|explicit|0|0"]["context_messages"] == 4
    assert answers["prompt|explicit|0|2"]["context_messages"] == 8
    assert answers["prompt|choice|0|2"]["context_messages"] == 10
    assert answers["edit:rome|choice|0|2"]["context_messages"] == 6
    assert answers["rag|explicit|0|0"]["memory"]["observations_explicit"] >= 1
    # without the reveal the sets' prompts are the same: asked once, the same answer in each set's row
    assert answers["none|explicit|1|2"]["answer"] == answers["none|choice|1|2"]["answer"]
    for row in answers.values():
        assert isinstance(row["acknowledged"], bool) and isinstance(row["violated"], bool)
        assert not (row["acknowledged"] and row["violated"])  # a violation is never acknowledged
    text = (out / "summary.md").read_text()
    assert "### Acknowledgment" in text and "| rag | choice |" in text
    for name in ("prefeval_acknowledgment.png", "prefeval_violation.png"):
        assert (out / name).read_bytes().startswith(PNG)
    retuned = imprint(tmp_path, *args, "--set", "solve_ridge=0")  # another ROME may not extend these answers
    assert retuned.returncode == 2 and "other settings" in retuned.stderr


@pytest.mark.slow
def test_an_endpoint_judge_judges_upqa_and_prefeval_runs(tmp_path: Path) -> None:
    def decide(question: str) -> str:  # a scripted grader: any non-empty reply counts, nothing violates
        return "no" if "goes against" in question else "yes"

    with serving(decide) as fake:
        judge = ["--judge-url", fake.url, "--judge-model", "grader-7b"]
        upqa = tmp_path / "upqa"
        args = [
            "eval", "upqa", "--data", str(_data() / "upqa/UPQA/balanced_subset.json"), "--methods", "none",
            "--limit", "1", "--out", str(upqa),
        ]  # fmt: skip
        res = imprint(tmp_path, *args, *judge)
        assert res.returncode == 0, res.stderr[-3000:]
        (row,) = _rows(upqa / "items.jsonl")
        asked = [q for q in ("efficacy", "paraphrase", "implicit", "product") if q in row]
        assert all(row[q]["how"] == "endpoint" and row[q]["hit"] for q in asked)
        assert len(fake.requests) == 1 + len(asked)  # the check before the model loads, then one per answer
        summary = json.loads((upqa / "summary.json").read_text())
        assert summary["provenance"]["judge"] == f"endpoint judge (grader-7b at {fake.url})"
        local = imprint(tmp_path, *args)  # judged by the endpoint: the local judge may not resume it
        assert local.returncode == 2
        assert "judge: was {'endpoint_model': 'grader-7b'}, now None" in local.stderr

        prefeval = tmp_path / "prefeval"
        res = imprint(
            tmp_path, "eval", "prefeval", "--data-dir", str(_data() / "prefeval"), "--turns", "0",
            "--sets", "explicit", "--methods", "none", "--limit", "1", "--out", str(prefeval), *judge,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        answers = [r for r in _rows(prefeval / "items.jsonl") if r.get("method")]
        assert len(answers) == 1 and answers[0]["acknowledged"] and answers[0]["ack_sim"] is None
        summary = json.loads((prefeval / "summary.json").read_text())
        (cell,) = summary["summaries"]
        assert cell["acknowledged"]["rate"] == 1.0  # the endpoint's verdict stands at publish


@pytest.mark.slow
def test_stability_checks_every_k_edits_and_extends(tmp_path: Path) -> None:
    out = tmp_path / "stability"
    args = ["eval", "stability", "--editors", "rome", "--every", "2", "--probe-items", "8", "--out", str(out)]
    res = imprint(tmp_path, *args, "--edits", "4")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = _rows(out / "rows.jsonl")
    assert [r["key"] for r in rows] == ["rome|2", "rome|4"]
    for row in rows:
        assert 0.0 <= row["retention"] <= 1.0 and 0.0 <= row["boolq_accuracy"] <= 1.0
        assert row["condition_number"] > 1.0 and row["median_seconds_per_edit"] > 0
        assert row["perplexity"] > 1.0 and row["norm_growth"] >= 0.0
        assert len(row["missed"]) == round(row["live"] * (1 - row["efficacy"]))  # each one not answered
        assert all(1 <= m["edit"] <= row["edits"] and m["answer"] for m in row["missed"])
        split = row["lost_by_likeness"]  # every live subject counted once, alike to another or not
        assert split["alike"]["live"] + split["distinct"]["live"] == row["live"]
        assert split["alike"]["lost"] + split["distinct"]["lost"] == len(row["missed"])
        figures = row["diagnostics"]  # ROME's own: its keys, the ones it holds, how far those moved
        assert figures["live_keys"] > figures["held_keys"] > 0 and figures["pin_drift_max"] >= 0.0
    assert (out / "stability.png").read_bytes().startswith(PNG)
    assert "live preferences" in (out / "summary.md").read_text()
    assert "| pin drift median |" in (out / "summary.md").read_text()

    more = imprint(tmp_path, *args, "--edits", "6")  # two more edits and one more check; earlier ones kept
    assert more.returncode == 0, more.stderr[-3000:]
    extended = _rows(out / "rows.jsonl")
    assert [r["key"] for r in extended] == ["rome|2", "rome|4", "rome|6"] and extended[:2] == rows
    from memory.weights.ledger import Ledger
    from memory.weights.weight_memory import LEDGER_FILE

    ledger = Ledger(out / "state" / "stability-rome" / LEDGER_FILE)
    assert ledger.head("stability") == 6
    refitted = [v.metrics["refitted"] for v in ledger.versions("stability")]  # each edit's, in its row
    ledger.close()
    assert all(isinstance(r, list) for r in refitted) and not refitted[0]  # nothing to refit at the first
    # the count is the ledger's, so the resumed run's last check counts the first run's refits too
    assert [r["diagnostics"]["refits"] for r in extended] == [sum(map(len, refitted[:n])) for n in (2, 4, 6)]
    assert "first failing drift check" in (out / "summary.md").read_text()

    plan = json.loads((out / "plan.json").read_text())
    assert plan["editors"]["rome"]["layer"] == 8  # the editor's settings are part of the plan ...
    refused = imprint(tmp_path, *args, "--edits", "8", "--set", "layer=6")  # ... so others do not extend it
    assert refused.returncode != 0 and "editors" in refused.stderr
    assert _rows(out / "rows.jsonl") == extended


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["eval", "upqa", "--data", "x.json", "--methods", "memgpt", "--out", "o"], "unknown method"),
        (["eval", "upqa", "--data", "missing.json", "--methods", "none", "--out", "o"], "cannot read"),
        (["eval", "prefeval", "--data-dir", "d", "--sets", "implicit", "--out", "o"], "unknown sets"),
        (["eval", "stability", "--edits", "500", "--out", "o"], "has 100 records"),
        (["eval", "stability", "--editors", "mend", "--out", "o"], "no editor named"),
        (["eval", "stability", "--set", "no_such_field=1", "--out", "o"], "no field of that name"),
        (["eval", "stability", "--set", "solve_ridge=small", "--out", "o"], "solve_ridge=small"),
        (
            ["eval", "upqa", "--data", "x", "--methods", "edit:lora", "--set", "v_steps=8", "--out", "o"],
            "no field of that name in the configs of ['lora']",
        ),
        (
            ["eval", "prefeval", "--data-dir", "d", "--methods", "edit:rome", "--set", "layer", "--out", "o"],
            "expected FIELD=VALUE",
        ),
        (
            [
                "eval",
                "upqa",
                "--data",
                "x.json",
                "--methods",
                "none",
                "--out",
                "o",
                "--judge-url",
                "http://h/v1",
            ],
            "needs both --judge-url and --judge-model",
        ),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(tmp_path: Path, args: list[str], says: str) -> None:
    res = imprint(tmp_path, *args, timeout=120)
    assert res.returncode == 2 and says in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "o").exists()


def test_an_endpoint_that_refuses_fails_the_run_before_the_model_loads(tmp_path: Path) -> None:
    with serving(lambda q: "yes") as fake:
        fake.failures = [(401, '{"error": "invalid api key"}')]
        res = imprint(
            tmp_path, "eval", "upqa", "--data", str(_data() / "upqa/UPQA/balanced_subset.json"),
            "--methods", "none", "--out", str(tmp_path / "o"), "--judge-url", fake.url, "--judge-model", "m",
            timeout=120,
        )  # fmt: skip
    assert res.returncode == 2 and "judge endpoint is not usable" in res.stderr
    assert "invalid api key" in res.stderr
    assert not (tmp_path / "o").exists()
