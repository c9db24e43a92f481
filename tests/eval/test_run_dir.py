"""A results folder resumes only the experiment it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consolidation.editors import available_editors, get_editor
from eval.run_dir import PLAN_FILE, editors_plan, fingerprint, open_run, portable


def test_same_settings_resume_other_settings_are_refused(tmp_path: Path) -> None:
    fixed = {"data": Path("/data/upqa.json"), "cluster_size": 1}
    open_run(tmp_path / "run", fixed)
    assert json.loads((tmp_path / "run" / PLAN_FILE).read_text()) == {
        "data": "/data/upqa.json",
        "cluster_size": 1,
    }
    open_run(tmp_path / "run", fixed)  # a resume
    with pytest.raises(ValueError, match=r"cluster_size: was 1, now 3"):
        open_run(tmp_path / "run", {**fixed, "cluster_size": 3})


def test_data_is_recorded_by_content_so_a_moved_copy_resumes(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "elsewhere" / "deeper"
    for root in (here, there):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "a.json").write_text('{"x": 1}')
        (root / "b.txt").write_text("filler")
    assert fingerprint(here / "b.txt") == fingerprint(there / "b.txt")
    open_run(tmp_path / "run", {"data": fingerprint(here), "pro": fingerprint(here / "b.txt")})
    open_run(tmp_path / "run", {"data": fingerprint(there), "pro": fingerprint(there / "b.txt")})  # resumes

    (there / "sub" / "a.json").write_text('{"x": 2}')  # same names, other content
    with pytest.raises(ValueError, match=r"data: was"):
        open_run(tmp_path / "run", {"data": fingerprint(there), "pro": fingerprint(there / "b.txt")})
    (there / "sub" / "a.json").write_text('{"x": 1}')
    assert fingerprint(there) == fingerprint(here)
    (there / "sub" / "a.json").rename(there / "a.json")  # same bytes, another layout
    assert fingerprint(there) != fingerprint(here)


def test_portable_settings_drop_only_where_files_lie() -> None:
    settings = {"layer": 8, "cov_cache_dir": "/root/.cache/x", "data_dir": "/work/data", "lr": 0.1}
    assert portable(settings) == {"layer": 8, "lr": 0.1}


def test_a_setting_the_first_run_had_and_this_one_lacks_is_a_change(tmp_path: Path) -> None:
    open_run(tmp_path / "run", {"data": "a", "judge": {"endpoint_model": "m"}})
    with pytest.raises(ValueError, match=r"judge: was \{'endpoint_model': 'm'\}, now None"):
        open_run(tmp_path / "run", {"data": "a"})


def test_one_edit_plans_leave_out_what_acts_only_on_earlier_edits(tmp_path: Path) -> None:
    rome = get_editor("rome")
    assert rome.history_settings == {"refit_lost", "refit_max"}
    every = editors_plan({"rome": rome})["rome"]
    single = editors_plan({"rome": rome}, one_edit_each=True)["rome"]
    assert set(every) - set(single) == {"refit_lost", "refit_max"}
    assert {k: v for k, v in every.items() if k in single} == single

    # a folder written before the refit settings existed resumes a one-edit evaluation under them...
    open_run(tmp_path / "run", {"editors": {"rome": single}})
    open_run(tmp_path / "run", {"editors": editors_plan({"rome": rome}, one_edit_each=True)})
    # ...but a sequential run, where they act, is still refused
    with pytest.raises(ValueError, match=r"editors: was"):
        open_run(tmp_path / "run", {"editors": editors_plan({"rome": rome})})
    # and so is a one-edit run under another setting that does act on a single edit
    other = editors_plan({"rome": get_editor("rome", v_steps=7)}, one_edit_each=True)
    with pytest.raises(ValueError, match=r"editors: was"):
        open_run(tmp_path / "run", {"editors": other})


def test_a_setting_added_later_is_left_out_while_it_edits_as_before(tmp_path: Path) -> None:
    """ROME's chat contexts: at 0 (as ROME edited before they existed) a folder planned without them, and
    without the settings that act only through them, resumes; switched on, it is another experiment."""
    chat = {"chat_contexts", "chat_context_turns", "chat_context_chars"}
    for one_edit_each in (False, True):
        off = editors_plan({"rome": get_editor("rome", chat_contexts=0)}, one_edit_each)["rome"]
        assert not chat & set(off)
        on = editors_plan({"rome": get_editor("rome", chat_contexts=2)}, one_edit_each)["rome"]
        assert chat <= set(on) and {k: v for k, v in on.items() if k in off} == off
    later = chat | {"held_questions", "hold_contexts", "held_questions_ridge", "scope"}  # gained after it
    before = {k: v for k, v in portable(get_editor("rome").settings()).items() if k not in later}
    open_run(tmp_path / "run", {"editors": {"rome": before}})  # written before the fields existed
    # chat_context_turns acts only through chat_contexts; scope=None serves at every token, as before
    inert = get_editor("rome", chat_contexts=0, chat_context_turns=9, scope=None)
    open_run(tmp_path / "run", {"editors": editors_plan({"rome": inert})})
    with pytest.raises(ValueError, match=r"editors: was"):
        unscoped_chat = get_editor("rome", chat_contexts=2, scope=None)
        open_run(tmp_path / "run", {"editors": editors_plan({"rome": unscoped_chat})})
    # the scope is on by default now, so today's defaults are another experiment than that folder's
    with pytest.raises(ValueError, match=r"editors: was"):
        open_run(tmp_path / "run", {"editors": editors_plan({"rome": get_editor("rome")})})


@pytest.mark.parametrize("name", available_editors())
def test_every_editors_history_and_added_settings_are_fields_of_its_config(name: str) -> None:
    editor = get_editor(name)
    fields = set(editor.settings())
    assert editor.history_settings <= fields
    for field, (_, through) in editor.added_settings.items():
        assert {field, *through} <= fields


def test_the_extractor_digest_follows_its_code_and_refuses_a_mixed_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of retrieval answers made with one lexicon refuses to resume with another."""
    import shutil

    import memory.extraction as package
    from eval.methods import parse_method
    from eval.run_dir import extraction_plan, extractor_plan

    copy = tmp_path / "extraction"
    shutil.copytree(Path(package.__file__).parent, copy)
    monkeypatch.setattr(package, "__file__", str(copy / "__init__.py"))
    before = extractor_plan()
    assert before == extractor_plan()  # the same code, the same digest
    rag = parse_method("rag", "rome", ["rome"])
    edit = parse_method("edit:rome", "rome", ["rome"])
    assert extraction_plan([edit]) == {}  # edit-only folders do not depend on the extractor
    open_run(tmp_path / "run", {"benchmark": "upqa", **extraction_plan([rag, edit])})

    cues = copy / "cues.py"
    source = cues.read_text()
    cues.write_text(source.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert extractor_plan() == before  # documenting the code changes nothing it does
    cues.write_text(source + "\nEXTRA_WEIGHT = 0.1\n")
    assert extractor_plan()["code"] != before["code"]
    with pytest.raises(ValueError, match="extractor"):
        open_run(tmp_path / "run", {"benchmark": "upqa", **extraction_plan([rag, edit])})


def test_a_folder_takes_methods_of_new_editors_but_not_new_settings_of_its_own(tmp_path: Path) -> None:
    run = tmp_path / "run"
    rome = {"layer": 8}
    open_run(run, {"benchmark": "upqa", "editors": {"rome": rome}, "extractor": {"sha256": "a"}})
    open_run(run, {"benchmark": "upqa", "editors": {"lora": {"rank": 4}}})  # edit:lora only: no extractor
    plan = json.loads((run / PLAN_FILE).read_text())
    assert plan["editors"] == {"rome": rome, "lora": {"rank": 4}}
    assert plan["extractor"] == {"sha256": "a"}  # kept for the retrieval answers already there
    with pytest.raises(ValueError, match="editors"):
        open_run(run, {"benchmark": "upqa", "editors": {"rome": {"layer": 6}}})
    with pytest.raises(ValueError, match="extractor"):
        open_run(run, {"benchmark": "upqa", "editors": {"rome": rome}, "extractor": {"sha256": "b"}})


def test_a_folder_from_before_the_extractor_digest_refuses_retrieval(tmp_path: Path) -> None:
    """Its retrieval answers came from an extractor nobody recorded: resuming could mix two."""
    open_run(tmp_path / "run", {"benchmark": "upqa", "editors": {}})
    with pytest.raises(ValueError, match="extractor: was None"):
        open_run(tmp_path / "run", {"benchmark": "upqa", "editors": {}, "extractor": {"sha256": "a"}})


def test_a_folder_of_bare_increments_refuses_edits_written_as_served(tmp_path: Path) -> None:
    """Folders from before `edits_plan` hold the editor's bare increment per item; the edits methods of a
    later run are written as the service writes them, so the folder refuses them, and still takes `rag`."""
    from eval.methods import parse_method
    from eval.run_dir import edits_plan

    rag = parse_method("rag", "rome", ["rome"])
    hybrid = parse_method("hybrid", "rome", ["rome"])
    assert edits_plan([rag]) == {}
    assert edits_plan([rag, hybrid]) == {"edits": "memory"}
    old = tmp_path / "old"
    open_run(old, {"benchmark": "upqa", "editors": {"rome": {"layer": 8}}})
    open_run(old, {"benchmark": "upqa", "editors": {}, **edits_plan([rag])})
    with pytest.raises(ValueError, match="edits: was None, now 'memory'"):
        open_run(old, {"benchmark": "upqa", "editors": {"rome": {"layer": 8}}, **edits_plan([hybrid])})
    new = tmp_path / "new"
    open_run(new, {"benchmark": "upqa", "editors": {"rome": {"layer": 8}}, **edits_plan([hybrid])})
    open_run(new, {"benchmark": "upqa", "editors": {}, **edits_plan([rag])})  # kept for the edits there
    assert json.loads((new / PLAN_FILE).read_text())["edits"] == "memory"


def test_a_folder_of_edits_that_held_nothing_refuses_edits_that_hold_the_statement(tmp_path: Path) -> None:
    """UPQA's edits now hold each record's statement as recalled (`EditRequest.held_contexts`): a folder
    written before refuses them, and a folder of either kind still takes `rag` and resumes itself."""
    from eval.methods import parse_method
    from eval.run_dir import edits_plan
    from eval.upqa_eval import HELD_IN_UPQA

    rag = parse_method("rag", "rome", ["rome"])
    hybrid = parse_method("hybrid", "rome", ["rome"])
    assert edits_plan([rag], holds=HELD_IN_UPQA) == {}
    holding = edits_plan([hybrid], holds=HELD_IN_UPQA)
    assert holding == {"edits": f"memory, holding {HELD_IN_UPQA}"}
    served = tmp_path / "served"
    open_run(served, {"benchmark": "upqa", **edits_plan([hybrid])})
    with pytest.raises(ValueError, match="edits: was 'memory', now 'memory, holding"):
        open_run(served, {"benchmark": "upqa", **holding})
    open_run(served, {"benchmark": "upqa", **edits_plan([rag], holds=HELD_IN_UPQA)})
    held = tmp_path / "held"
    open_run(held, {"benchmark": "upqa", **holding})
    open_run(held, {"benchmark": "upqa", **holding})
    open_run(held, {"benchmark": "upqa", **edits_plan([rag], holds=HELD_IN_UPQA)})
