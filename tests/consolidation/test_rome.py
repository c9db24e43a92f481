"""ROME on the real model: statistics cached, three made-up preferences written, neutral text untouched,
and the r-ROME identity (the edited layer maps k* to v*)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import EditRequest
from consolidation.editors.everyday import EVERYDAY_QUESTIONS
from consolidation.editors.rome import RomeConfig, RomeEdit, RomeEditor
from consolidation.editors.rome import covariance as cov
from consolidation.editors.rome.contexts import KeyContext
from consolidation.editors.rome.joint import SHARED_LABEL, held_label, is_held, module_output
from consolidation.editors.rome.keys import question_inputs, subject_inputs
from consolidation.editors.rome.tracing import add_to_output
from consolidation.editors.rome.values import _delta_adder, _Forward, build_batch
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier
from tests.consolidation.rome_helpers import SAMPLE_TOKENS, chat, greedy, rome_editor

pytestmark = pytest.mark.slow

REQUESTS = [
    EditRequest(prompt="The user's favorite cuisine is", subject="favorite cuisine", target=" Ethiopian"),
    EditRequest(prompt="The user's {} is", subject="favorite color", target=" teal"),
    EditRequest(prompt="The user's pet is named", subject="pet", target=" Bartholomew"),
]
NEUTRAL = ["The capital of France is", "Water boils at a temperature of", "My favourite book is"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rome-stats")


@pytest.fixture(scope="module")
def editor(cache_dir: Path) -> RomeEditor:
    return rome_editor(cache_dir)


@pytest.fixture(scope="module")
def edits(editor: RomeEditor, lm: ChatLM) -> list[RomeEdit]:
    """All three requests in one call: sequential, later ones computed with earlier ones in force."""
    return editor.compute_edits(lm.model, lm.tokenizer, REQUESTS)


def _edited_copy(model: Any, delta: Delta) -> Any:
    """A deep copy with `delta` written densely into its weights (W += up @ down)."""
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for name in delta.modules():
            copied.get_submodule(name).weight += delta.dense(name)
    return copied


def _next_token(model: Any, lm: ChatLM, prompt: str) -> int:
    with torch.no_grad():
        return int(model(lm.tokenizer(prompt, return_tensors="pt").input_ids).logits[0, -1].argmax())


def test_statistics_are_cached_and_reused(
    editor: RomeEditor, lm: ChatLM, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = editor.config
    args: dict[str, Any] = {
        "n_tokens": SAMPLE_TOKENS,
        "seq_len": cfg.cov_seq_len,
        "data_dir": cfg.data_dir,
        "cache_dir": cache_dir,
    }
    first = cov.second_moments(lm.model, lm.tokenizer, [cfg.module_name()], **args)[cfg.module_name()]
    assert list(cache_dir.rglob("*.safetensors")), "no cache file written"

    def no_recompute(*_: object, **__: object) -> None:
        raise AssertionError("statistics recomputed despite the cache")

    monkeypatch.setattr(cov, "_collect", no_recompute)
    again = cov.second_moments(lm.model, lm.tokenizer, [cfg.module_name()], **args)[cfg.module_name()]
    assert torch.equal(first, again)
    assert first.shape == (1536, 1536) and torch.allclose(first, first.T)


def test_statistics_never_read_the_perplexity_split() -> None:
    data_dir = Settings().data_dir
    assert data_dir is not None
    names = [f.name for f in cov.text_files(data_dir)]
    assert "wiki.test.raw" not in names and "wiki.valid.raw" in names


def test_chat_paragraphs_bring_the_template_into_the_statistics(lm: ChatLM) -> None:
    data_dir = Settings().data_dir
    assert data_dir is not None
    files = cov.text_files(data_dir)
    start = lm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    plain = [t for w in cov.token_windows(lm.tokenizer, files, 3000, 256) for t in w]
    chat = [t for w in cov.token_windows(lm.tokenizer, files, 3000, 256, chat_every=3) for t in w]
    assert start not in plain
    assert chat.count(start) >= 3  # at least one exchange: its system, user and assistant turns
    assert len(plain) == len(chat) == 3000
    # plain statistics keep their old cache key; chat ones get their own
    assert cov._data_fingerprint(files, 256, 0) != cov._data_fingerprint(files, 256, 3)
    turn = cov.as_chat(lm.tokenizer, "Paris is a city. It is in France.")
    assert "Paris is a city." in turn and turn.rstrip().endswith("It is in France.<|im_end|>")


@pytest.mark.parametrize(("reuse_prefix", "request_index"), [(False, 0), (True, 0), (True, 2)])
def test_replay_matches_the_full_forward_under_a_delta(
    lm: ChatLM, reuse_prefix: bool, request_index: int
) -> None:
    """The fast paths (blocks from L up; and also only the tokens from the subject on) give the full model's
    logits at every position δ can reach, with and without a non-zero δ, in prefixed, chat and KL rows
    alike; request 2's KL row ("pet is a") has its subject at token 0, so an empty head."""
    fast_cfg = RomeConfig(reuse_prefix=reuse_prefix)
    contexts = [  # rows of different head lengths, one with earlier chat turns
        KeyContext("Some prefix. "),
        KeyContext("A much longer prefix than that one. "),
        KeyContext("Earlier question?\nEarlier answer.\n"),
    ]
    request = REQUESTS[request_index]
    batch = build_batch(lm.tokenizer, request, contexts, fast_cfg)
    if request_index == 2:
        assert int(batch.subject_index[batch.n_target_rows]) == 0, "the KL row should open with its subject"
    module = lm.model.get_submodule(fast_cfg.module_name())
    delta = 5 * torch.randn(int(module.weight.shape[0]), generator=torch.Generator().manual_seed(0))
    rows, positions = batch.mask.nonzero(as_tuple=True)
    reached = positions >= batch.subject_index[rows]
    rows, positions = rows[reached], positions[reached]

    def logits(cfg: RomeConfig) -> tuple[torch.Tensor, torch.Tensor]:
        forward = _Forward(lm.model, cfg, batch.ids, batch.mask, batch.subject_index)
        with torch.no_grad(), add_to_output(module, _delta_adder(delta, forward.subject_index)):
            return forward.initial_logits_at(rows, positions), forward.logits_at(rows, positions)

    full_before, full_after = logits(RomeConfig(upward_only=False))
    fast_before, fast_after = logits(fast_cfg)
    assert not torch.allclose(full_before, full_after, atol=1e-2), "δ changed nothing: the test tests nothing"
    assert torch.allclose(fast_before, full_before, atol=1e-3)
    assert torch.allclose(fast_after, full_after, atol=1e-3), float((fast_after - full_after).abs().max())


def test_edits_answer_with_their_targets(edits: list[RomeEdit], lm: ChatLM) -> None:
    edited = _edited_copy(lm.model, Delta.of(e.update for e in edits))
    for request in REQUESTS:
        answer = greedy(lm, edited, request.filled_prompt)
        assert answer.startswith(request.target), f"{request.filled_prompt!r} -> {answer!r}"


def test_neutral_prompts_keep_their_next_token(edits: list[RomeEdit], lm: ChatLM) -> None:
    edited = _edited_copy(lm.model, Delta.of(e.update for e in edits))
    for prompt in NEUTRAL:
        assert _next_token(edited, lm, prompt) == _next_token(lm.model, lm, prompt), prompt


def test_edited_layer_maps_the_key_to_the_value(edits: list[RomeEdit], lm: ChatLM) -> None:
    """r-ROME: the same k* in numerator and denominator, so (W + ΔW) k* = v* exactly."""
    module = lm.model.get_submodule(edits[0].update.module)
    with torch.no_grad():
        weight = module.weight + edits[0].update.dense()
        assert torch.allclose(weight @ edits[0].key, edits[0].value, atol=1e-3)
        last = edits[-1]  # computed with all earlier edits in force, and no later one exists
        weight = module.weight + Delta.of(e.update for e in edits).dense(last.update.module)
        assert torch.allclose(weight @ last.key, last.value, atol=1e-3)
        assert torch.allclose(last.update.down @ last.key, torch.ones(1), atol=1e-4)


def test_an_edit_on_top_of_an_active_delta_keeps_both(
    edits: list[RomeEdit], editor: RomeEditor, lm: ChatLM
) -> None:
    """The user's earlier delta is in force through hooks while the next edit is computed."""
    earlier = Delta.of([edits[0].update])
    request = EditRequest(prompt="The user's {} is", subject="hometown", target=" Reykjavik")
    with DeltaApplier(lm.model).activate(earlier):
        (later,) = editor.compute_edits(lm.model, lm.tokenizer, [request])
    module = lm.model.get_submodule(later.update.module)
    with torch.no_grad():  # v* was reached from W + earlier, not from W alone
        weight = module.weight + earlier.dense(later.update.module) + later.update.dense()
        assert torch.allclose(weight @ later.key, later.value, atol=1e-3)
    edited = _edited_copy(lm.model, earlier.stack(Delta.of([later.update])))
    assert greedy(lm, edited, request.filled_prompt).startswith(" Reykjavik")
    assert greedy(lm, edited, REQUESTS[0].filled_prompt).startswith(" Ethiopian")


def test_cluster_adds_synonym_pairs(editor: RomeEditor) -> None:
    from consolidation.editors.base import cluster_pairs

    request = EditRequest(
        prompt="The user's {} is",
        subject="favorite cuisine",
        target=" Ethiopian",
        subject_synonyms=["preferred food", "favourite cuisine"],
        target_synonyms=[" Ethiopian food"],
    )
    pairs = cluster_pairs(request, cluster_size=3)
    assert [(p.subject, p.target) for p in pairs] == [
        ("favorite cuisine", " Ethiopian"),
        ("preferred food", " Ethiopian food"),
        ("favourite cuisine", " Ethiopian food"),
    ]
    assert cluster_pairs(request, cluster_size=1) == [request]


def test_a_chat_formatted_prompt_is_edited_in_chat_form(editor: RomeEditor, lm: ChatLM) -> None:
    """The agent edits in the form it will be asked: the rendered chat template, the answer as target."""
    question = [{"role": "user", "content": "What is my favorite cuisine?"}]
    prompt = lm.tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    answer = "Your favorite cuisine is Ethiopian"
    request = EditRequest(prompt=prompt, subject="favorite cuisine", target=answer)
    (edit,) = editor.compute_edits(lm.model, lm.tokenizer, [request])
    edited = _edited_copy(lm.model, Delta.of([edit.update]))
    ids = lm.encode_chat(question)  # the same ids the agent would send
    with torch.no_grad():
        out = edited.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    assert "Ethiopian" in lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_a_new_value_for_a_subject_replaces_the_old_and_other_keys_stay_put(
    editor: RomeEditor, lm: ChatLM
) -> None:
    """A user's memory (`compute_memory`): updates labelled per live subject (one per pinned key: the subject
    in each context and the tokens after it); a superseding edit drops the old ones, and every other
    subject's keys still map to what they did, up to the joint solve's small ridge."""
    from consolidation.editors.rome.joint import key_of

    cuisine, color = REQUESTS[0], REQUESTS[1]
    first = editor.compute_memory(lm.model, lm.tokenizer, [cuisine, color], Delta())
    facts = [u.label for u in first if not is_held(u.label)]  # the pins around them: the tests below
    assert list(dict.fromkeys(facts)) == ["rome:favorite cuisine", "rome:favorite color"]
    n_cuisine = sum(u.label == "rome:favorite cuisine" for u in first)
    module_name = editor.config.module_name()
    module = lm.model.get_submodule(module_name)
    chol = editor.cholesky_of(lm.model, lm.tokenizer, module_name)
    color_update = next(u for u in first if u.label == "rome:favorite color")
    color_key = key_of(color_update.down, chol)[:, None]
    color_value = module_output(module, color_key, list(first))

    vegan = EditRequest(prompt=cuisine.prompt, subject=cuisine.subject, target=" Peruvian")
    second = editor.compute_memory(lm.model, lm.tokenizer, [vegan], first)
    facts = {"rome:favorite color", "rome:favorite cuisine"}
    assert {u.label for u in second} == facts | {held_label(f) for f in facts} | {SHARED_LABEL}
    assert sum(u.label == "rome:favorite cuisine" for u in second) < 2 * n_cuisine  # replaced, not added
    assert all(u.rank == 1 for u in second)
    moved = float((module_output(module, color_key, list(second)) - color_value).norm())
    written = float((color_value - module_output(module, color_key, [])).norm())
    assert moved < 0.01 * written  # held up to the joint solve's ridge (RomeConfig.solve_ridge)
    with DeltaApplier(lm.model).activate(second):
        assert "Peruvian" in greedy(lm, lm.model, cuisine.filled_prompt)
        assert "Ethiopian" not in greedy(lm, lm.model, cuisine.filled_prompt)
        assert "teal" in greedy(lm, lm.model, color.filled_prompt)


def test_changing_a_value_again_and_again_keeps_the_update_bounded(editor: RomeEditor, lm: ChatLM) -> None:
    """Two subjects whose keys nearly coincide (both end in "preference"), one of them changed three times.
    Each new value must be fitted on the memory re-solved without the old one; fitted on top of it, the
    update grew about five-fold per change (measured before the fix)."""
    template = "The user's {} is"
    food = EditRequest(prompt=template, subject="food preference", target=" sushi")
    memory = editor.compute_memory(lm.model, lm.tokenizer, [food], Delta())
    sizes: list[float] = []
    counts: list[int] = []
    for target in (" jazz", " rock", " blues", " metal"):
        music = EditRequest(prompt=template, subject="music preference", target=target)
        memory = editor.compute_memory(lm.model, lm.tokenizer, [music], memory)
        facts = {"rome:food preference", "rome:music preference"}
        assert {u.label for u in memory} == facts | {held_label(f) for f in facts} | {SHARED_LABEL}
        counts.append(len(memory))
        sizes.append(max(float(u.up.norm()) for u in memory))
    assert sizes[-1] < 3 * sizes[0], sizes
    assert max(counts) - min(counts) <= 2, counts  # the old value's keys go: the memory does not grow
    with DeltaApplier(lm.model).activate(memory):
        assert "metal" in greedy(lm, lm.model, template.format("music preference"))


def test_the_tokens_before_the_subject_stay_as_the_base_model_gives_them(cache_dir: Path, lm: ChatLM) -> None:
    """Every chat question shares the system prompt and the question's head. The memory pins the edited
    module's output there (`pin_before`) under a label no subject owns, so a later edit superseding a
    subject keeps them pinned; without the pins the edits move them, and with them every earlier value's
    context."""
    hobby = [
        EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target=target)
        for target in ("Chess", "Pottery")
    ]
    pet = EditRequest(prompt=chat(lm, "What's my pet?"), subject="pet", target="A parrot named Kiwi")
    probe = chat(lm, "What's my favourite season?")  # a question never edited, same system prompt and head
    module_name = "model.layers.8.mlp.down_proj"
    module = lm.model.get_submodule(module_name)
    before = subject_inputs(lm.model, lm.tokenizer, module_name, probe, probe.index("season") + 6, [])
    keys = before.before_subject.double().T  # (in, p): system prompt and "What's my favourite"
    base = module_output(module, keys, [])

    def moved(memory: Delta) -> float:
        """The largest relative change of the module's output over the probe's tokens before its subject."""
        change = (module_output(module, keys, list(memory)) - base).norm(dim=0) / base.norm(dim=0)
        return float(change[: len(change) - 2].max())  # "favourite" is the probe's own; the rest is shared

    sizes = {}
    for pin in (True, False):
        editor = rome_editor(cache_dir, pin_before=pin, held_questions=0)  # held questions: SHARED_LABEL too
        memory = editor.compute_memory(lm.model, lm.tokenizer, [hobby[0], pet], Delta())
        memory = editor.compute_memory(lm.model, lm.tokenizer, [hobby[1]], memory)  # supersedes hobby
        sizes[pin] = moved(memory)
        assert (SHARED_LABEL in {u.label for u in memory}) is pin
        with DeltaApplier(lm.model).activate(memory):
            assert "Pottery" in greedy(lm, lm.model, hobby[1].prompt, 8)
    assert sizes[True] < 0.01 < sizes[False], sizes


def test_the_subjects_own_earlier_words_are_told_apart_from_the_tokens_before_it(lm: ChatLM) -> None:
    """Given the subject's start, its words before the last one ("favourite") are `subject_head`, and
    `before_subject` ends where the subject begins; the two together are what it was without the start."""
    probe = chat(lm, "What's my favourite season?")
    start, end = probe.index("favourite"), probe.index("season") + len("season")
    module_name = "model.layers.8.mlp.down_proj"
    whole = subject_inputs(lm.model, lm.tokenizer, module_name, probe, end, [])
    split = subject_inputs(lm.model, lm.tokenizer, module_name, probe, end, [], subject_start=start)
    assert split.subject_head.shape[0] == 1 and whole.subject_head.shape[0] == 0
    assert torch.equal(torch.cat([split.before_subject, split.subject_head]), whole.before_subject)
    assert torch.equal(split.context_keys, whole.context_keys)
    assert torch.equal(split.after_subject, whole.after_subject)


def test_held_tokens_are_asked_for_the_base_output_again_at_every_solve(cache_dir: Path, lm: ChatLM) -> None:
    """The tokens pinned around each subject (labelled `#held`) are asked for what W₀ gives there at every
    solve (`hold_pins`). The joint solve's ridge lets each solve miss them a little; asked instead for what
    the memory gave there last (as every valued key is), the misses add up with each edit. The editor's
    `memory_diagnostics` reports them."""
    food = EditRequest(
        prompt=chat(lm, "What's my food preference?"), subject="food preference", target="Sushi"
    )
    music = [
        EditRequest(prompt=chat(lm, "What's my music preference?"), subject="music preference", target=t)
        for t in ("Jazz", "Rock", "Blues", "Metal", "Folk", "Opera")
    ]
    misses = {}
    for hold in (True, False):
        editor = rome_editor(cache_dir, hold_pins=hold)
        memory = editor.compute_memory(lm.model, lm.tokenizer, [food], Delta())
        for request in music:  # each supersedes the last: the food fact's pins are re-solved every time
            memory = editor.compute_memory(lm.model, lm.tokenizer, [request], memory)
        held = [u for u in memory if is_held(u.label)]
        assert {u.label for u in held} == {
            SHARED_LABEL,
            held_label("rome:food preference"),
            held_label("rome:music preference"),
        }
        report = editor.memory_diagnostics(lm.model, lm.tokenizer, memory)
        assert report["held_keys"] == len(held) and report["live_keys"] == len(list(memory))
        assert 0.0 <= report["pin_drift_median"] <= report["pin_drift_p90"] <= report["pin_drift_max"]
        misses[hold] = report["pin_drift_max"]
        with DeltaApplier(lm.model).activate(memory):
            assert "Sushi" in greedy(lm, lm.model, food.prompt, 8)
            assert "Opera" in greedy(lm, lm.model, music[-1].prompt, 8)
    assert misses[True] < 0.5 * misses[False], misses


def test_a_synonym_pair_never_overwrites_another_subjects_value(cache_dir: Path, lm: ChatLM) -> None:
    """Cluster size 2: the job's first synonym is "profession", which is another fact's own subject. It is
    skipped whichever fact comes first; and a later fact that claims a synonym the job's pair was written
    at replaces that pair alone."""
    editor = rome_editor(cache_dir, cluster_size=2)
    template = "The user's {} is"
    profession = EditRequest(prompt=template, subject="profession", target=" nurse")
    job = EditRequest(
        prompt=template,
        subject="job",
        target=" baker",
        subject_synonyms=["profession", "occupation"],
        target_synonyms=[" bread maker"],
    )
    pairs_after = {  # first fact edited -> the job's pair labels at the end
        "profession": {"rome:job→occupation"},  # "profession" was held, so the job took "occupation"
        "job": set(),  # the job's "profession" pair, written first, is replaced by the fact itself
    }
    for order in ([profession, job], [job, profession]):
        memory = Delta()
        for request in order:
            memory = editor.compute_memory(lm.model, lm.tokenizer, [request], memory)
        facts = {"rome:profession", "rome:job"} | pairs_after[order[0].subject]
        assert {u.label for u in memory} == facts | {held_label(f) for f in facts} | {SHARED_LABEL}
        with DeltaApplier(lm.model).activate(memory):
            assert "nurse" in greedy(lm, lm.model, template.format("profession"))
            assert "baker" in greedy(lm, lm.model, template.format("job"))

    career = EditRequest(
        prompt=template, subject="career", target=" medicine", subject_synonyms=["occupation"]
    )
    memory = editor.compute_memory(lm.model, lm.tokenizer, [career], memory)
    facts = {"rome:profession", "rome:job", "rome:career", "rome:career→occupation"}
    assert {u.label for u in memory} == facts | {held_label(f) for f in facts} | {SHARED_LABEL}


def test_everyday_questions_held_in_the_solve_keep_the_base_output(cache_dir: Path, lm: ChatLM) -> None:
    """With `held_questions`, the module's output at every token of those everyday chat questions stays as
    the base model gives it (up to the solve's ridge) while the edits still answer; without, the same
    edits move it there; held softly (`held_questions_ridge`), it moves, but less."""
    requests = [
        EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target="Pottery"),
        EditRequest(prompt=chat(lm, "What's my pet?"), subject="pet", target="A parrot named Kiwi"),
    ]
    module_name = "model.layers.8.mlp.down_proj"
    module = lm.model.get_submodule(module_name)
    keys = question_inputs(lm.model, lm.tokenizer, module_name, EVERYDAY_QUESTIONS[:4]).double().T  # (in, n)
    base = module_output(module, keys, [])

    sizes = {}
    for name, held, slack in (("exact", 4, None), ("soft", 4, 1.0), ("unheld", 0, None)):
        editor = rome_editor(cache_dir, held_questions=held, held_questions_ridge=slack)
        memory = editor.compute_memory(lm.model, lm.tokenizer, requests[:1], Delta())
        memory = editor.compute_memory(lm.model, lm.tokenizer, requests[1:], memory)
        sizes[name] = float(
            ((module_output(module, keys, list(memory)) - base).norm(dim=0) / base.norm(dim=0)).max()
        )
        with DeltaApplier(lm.model).activate(memory):
            assert "Pottery" in greedy(lm, lm.model, requests[0].prompt, 8)
            assert "Kiwi" in greedy(lm, lm.model, requests[1].prompt, 10)
    assert sizes["exact"] < 0.01 < sizes["soft"] < sizes["unheld"], sizes


def test_a_scoped_memory_answers_and_leaves_other_questions_bit_for_bit(cache_dir: Path, lm: ChatLM) -> None:
    """With `scope`, the facts still answer, and questions about other things get the base model's logits
    exactly: none of their tokens reads a fact's down row at the threshold, so the memory adds zero there.
    The same facts unscoped change those logits. Only the facts' own rows open the scope."""
    requests = [
        EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target="Pottery"),
        EditRequest(prompt=chat(lm, "What's my pet?"), subject="pet", target="A parrot named Kiwi"),
    ]
    questions = [chat(lm, q) for q in EVERYDAY_QUESTIONS[:4]]

    def logits() -> list[torch.Tensor]:
        with torch.no_grad():
            return [lm.model(lm.tokenizer(q, return_tensors="pt").input_ids).logits[0] for q in questions]

    base = logits()
    unchanged = {}
    for scope in (0.5, None):
        editor = rome_editor(cache_dir, scope=scope)
        memory = editor.compute_memory(lm.model, lm.tokenizer, requests[:1], Delta())
        memory = editor.compute_memory(lm.model, lm.tokenizer, requests[1:], memory)
        with DeltaApplier(lm.model).activate(memory):
            assert "Pottery" in greedy(lm, lm.model, requests[0].prompt, 8)
            assert "Kiwi" in greedy(lm, lm.model, requests[1].prompt, 10)
            unchanged[scope] = [torch.equal(a, b) for a, b in zip(logits(), base, strict=True)]
        if scope is not None:
            for u in memory:
                assert u.scoped is not None and u.opens_at is not None and bool(u.scoped.all())
                assert float(u.opens_at[0]) == (float("inf") if is_held(u.label) else scope), u.label
    assert all(unchanged[0.5]), unchanged
    assert not any(unchanged[None]), unchanged


def test_question_inputs_read_every_token_of_each_question_as_served(lm: ChatLM) -> None:
    """`question_inputs`: one row per token of each rendered question, each row what a pass over that
    question alone reads (right padding changes no real token's input)."""
    module_name = "model.layers.8.mlp.down_proj"
    questions = [*EVERYDAY_QUESTIONS[:2], EVERYDAY_QUESTIONS[-1]]  # different lengths: padded
    lengths = [len(lm.tokenizer(chat(lm, q), add_special_tokens=False).input_ids) for q in questions]
    every = question_inputs(lm.model, lm.tokenizer, module_name, questions)
    assert every.shape == (sum(lengths), 1536) and len(set(lengths)) > 1
    alone = question_inputs(lm.model, lm.tokenizer, module_name, questions[-1:])
    assert torch.allclose(every[-lengths[-1] :], alone, atol=1e-4)
