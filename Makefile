# The two set-up commands of the README. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# AgentDojo's attack wordings for `bench attacks`, read from its source: without its model
	# clients (openai, anthropic, cohere, google-genai, langchain), which the bench never imports.
	$(BIN)/python -m pip install --quiet --no-deps agentdojo==0.1.35
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trustusbank demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/trustusbank manifests check deploy
	$(BIN)/pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
