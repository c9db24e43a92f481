"""The edit benchmark's pieces: supersession, the table, the memory probe, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import Settings
from eval.bench_edit import COLUMNS, data_file, render_table
from eval.edit_run import superseded_by
from eval.peak_memory import PeakMemory
from eval.upqa import UpqaRecord
from tests.api.test_cli import imprint


def _record(index: int, subject: str) -> UpqaRecord:
    return UpqaRecord(index, f"What's my {subject}?", subject, f"t{index}", None, None, (), (), ())


def test_a_later_record_about_the_same_subject_supersedes_an_earlier_one() -> None:
    records = [_record(0, "hobby"), _record(1, "pet"), _record(2, "Hobby"), _record(3, "hobby")]
    assert superseded_by(records) == [3, None, 3, None]


def test_table_has_one_row_per_run_and_marks_missing_values() -> None:
    flips = [{"base_margin": 0.5}, {"base_margin": 0.0071}]
    rows = [
        {"editor": "rome", "cluster_size": 1, "efficacy": 1.0, "isolation_bit_identical": True},
        {"editor": "lora", "cluster_size": 3, "efficacy": None, "median_seconds_per_edit": 12.345},
        {"editor": "ftm", "cluster_size": 1, "locality_flips": flips},
        {"editor": "ftm", "cluster_size": 3, "locality_flips": []},
    ]
    lines = render_table(rows).splitlines()
    assert len(lines) == 6 and lines[0].count("|") == len(COLUMNS) + 1
    assert "| rome | 1 |" in lines[2] and "yes" in lines[2]
    assert "| lora | 3 |" in lines[3] and "–" in lines[3] and "12.3" in lines[3]
    assert "| 0.007, 0.500 |" in lines[4]  # the flips' base margins, closest tie first
    assert "| none |" in lines[5]


def test_peak_memory_sees_an_allocation_inside_the_block() -> None:
    with PeakMemory(interval_s=0.01) as outer:
        block = bytearray(200 * 2**20)  # 200 MiB, touched so it is resident
        block[::4096] = b"x" * len(block[::4096])
        del block
    assert outer.source == "proc" and outer.peak_mib >= 200


def test_missing_upqa_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="IMPRINT_DATA_DIR"):
        data_file(tmp_path, 3)


@pytest.mark.slow
def test_bench_command_writes_json_and_a_table(tmp_path: Path) -> None:
    assert Settings().data_dir is not None
    out = tmp_path / "bench.json"
    res = imprint(
        tmp_path, "bench", "edit", "--out", str(out), "--editors", "rome", "--cluster-sizes", "1",
        "--limit", "2", "--neutral", "5", "--offset", "9", "--stride", "10", "--set", "v_steps=8",
        "--hold-statements",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["editor"] == "rome" and row["cluster_size"] == 1 and row["edits"] == 2
    assert row["isolation_bit_identical"] is True and row["peak_rss_mib"] > 100
    assert len(report["runs"][0]["records"]) == 2 and report["provenance"]["commit"]
    assert [r["record"] for r in report["runs"][0]["records"]] == [9, 19]  # every 10th record from the 9th
    assert row["settings"]["v_steps"] == 8  # the override reached the editor
    assert row["hold_statements"] is True
    assert len(row["locality_flips"]) == round((1 - row["locality"]) * 5)
    assert "| rome | 1 | 2 |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--editors", "magic"], "known editors"),
        (["--cluster-sizes", "0,3"], "1..9"),
        (["--cluster-sizes", "one"], "comma-separated"),
        (["--editors", "rome", "--set", "no_such_field=1"], "no field"),
        (["--editors", "rome", "--set", "layer=eight"], "layer=eight"),
        (["--editors", "rome", "--set", "layer"], "FIELD=VALUE"),
    ],
)
def test_bad_bench_arguments_are_clear_errors(tmp_path: Path, args: list[str], message: str) -> None:
    res = imprint(tmp_path, "bench", "edit", "--out", str(tmp_path / "x.json"), *args)
    assert res.returncode == 2 and message in res.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "no_such_field=1"], "no field of that name in the configs of ['rome']"),
        (["--set", "solve_ridge=small"], "solve_ridge=small"),
        (["--editor", "lora", "--set", "v_steps=8"], "no field of that name in the configs of ['lora']"),
        (["--editor", "mend"], "no editor named"),
    ],
)
def test_the_drift_bench_checks_its_editor_settings_before_loading_anything(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """`bench drift --set` changes the editor's config like every other command's, and a field or value it
    cannot take is a clear error before the model loads."""
    res = imprint(tmp_path, "bench", "drift", "--out", str(tmp_path / "x.json"), *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "x.json").exists()
