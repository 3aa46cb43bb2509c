# losscli: `make demo` and `make test` work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
LOSSCLI := $(BIN)/losscli

.PHONY: demo test lint bench bench-quick fuzz install clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps re-install only when pyproject.toml changes.
# compileall: start-up stays fast even where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.stamp-install: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	$(PY) -m compileall -q src
	touch $@

# dask: the --engine dask tests start real schedulers and workers; they run in CI.
# report: --report's charts (matplotlib); its test renders the page in Debian's chromium.
$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-install
	$(PY) -m pip install --quiet -e '.[test,lint,dask,report]'
	touch $@

# Headless Chromium for the --report test, installed when missing (Debian's package; as root,
# or through sudo when there is one). Without it that one test is skipped and says so.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium >/dev/null || \
	      { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }; \
	    elif command -v sudo >/dev/null 2>&1; then sudo apt-get install -y chromium >/dev/null; fi; } || \
	  echo "make: could not install chromium; the --report rendering test will be skipped" >&2

install: $(VENV)/.stamp-install

demo: $(VENV)/.stamp-install
	@echo '$$ losscli mse sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv'
	@$(LOSSCLI) mse sample_data/exercise1_preds.csv sample_data/exercise1_targets.csv --format table
	@echo '$$ losscli ce sample_data/exercise2_probs.csv sample_data/exercise2_targets.csv'
	@$(LOSSCLI) ce sample_data/exercise2_probs.csv sample_data/exercise2_targets.csv --format table
	@echo '$$ losscli perplexity --logits sample_data/paris_logits.npy --targets sample_data/paris_targets.npy'
	@$(LOSSCLI) perplexity --logits sample_data/paris_logits.npy --targets sample_data/paris_targets.npy --format table
	@echo '$$ losscli mse sample_data/houses.parquet --pred-col predicted_price --target-col price'
	@$(LOSSCLI) mse sample_data/houses.parquet --pred-col predicted_price --target-col price --format table
	@echo '$$ losscli bce sample_data/spam.csv --pred-col prob --target-col label'
	@$(LOSSCLI) bce sample_data/spam.csv --pred-col prob --target-col label --format table
	@echo '$$ losscli ce sample_data/digits_logits.npy sample_data/digits_labels.npy --top 5'
	@$(LOSSCLI) ce sample_data/digits_logits.npy sample_data/digits_labels.npy --top 5 --format table
	@echo '$$ losscli perplexity --logits sample_data/bigram/logits.npy --targets sample_data/bigram/input_ids.npy --shift --topk 5 --text sample_data/bigram/heldout.txt'
	@$(LOSSCLI) perplexity --logits sample_data/bigram/logits.npy --targets sample_data/bigram/input_ids.npy --shift --topk 5 --text sample_data/bigram/heldout.txt --format table
	@echo '$$ losscli perplexity --logprobs sample_data/bigram/completions.jsonl --format json'
	@$(LOSSCLI) perplexity --logprobs sample_data/bigram/completions.jsonl --format json --top 0
	@echo '$$ losscli mse sample_data/houses.parquet --pred-col predicted_price --target-col price --format json'
	@$(LOSSCLI) mse sample_data/houses.parquet --pred-col predicted_price --target-col price --format json

test: $(VENV)/.stamp-test chromium
	$(PY) -m pytest -q

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests benchmarks sample_data
	$(BIN)/mypy

$(VENV)/.stamp-bench: pyproject.toml $(VENV)/.stamp-install
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

# Full scale (several GB of data under benchmarks/data, about 10 minutes); rewrites BENCHMARKS.md.
# compileall first: with PYTHONDONTWRITEBYTECODE set, edited modules would be compiled on every
# run and the start-up rows would time the compiler.
bench: $(VENV)/.stamp-bench
	$(PY) -m compileall -q src
	$(PY) benchmarks/bench.py --rounds 5 --write BENCHMARKS.md

# A tenth of the data, one round: under two minutes.
bench-quick: $(VENV)/.stamp-bench
	$(PY) -m compileall -q src
	$(PY) benchmarks/bench.py --quick

# Mutation fuzzing of every reader for FUZZ_SECONDS (default 120); crashes land in
# tests/fuzz_corpus/, which `make test` replays.
FUZZ_SECONDS ?= 120
fuzz: $(VENV)/.stamp-test
	$(PY) tests/fuzz_run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
