# The two set-up commands (README): `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint schema serve lock clean

# The virtual environment is rebuilt whenever the pinned dependencies or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dialogue demo --activities examples/activities --segments examples/segments --events examples/events

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/dialogue validate examples/activities/*.json --segments examples/segments --templates examples/templates
	$(BIN)/mypy layers/engine/dialogue
	$(BIN)/cfn-lint infra/template.yaml
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy layers/engine/dialogue

# The committed JSON Schemas, for editors; a test fails when they drift from the models.
schema: $(STAMP)
	for kind in activity segment event outcome; do $(BIN)/dialogue schema $$kind > docs/schema/$$kind.schema.json; done

serve: $(STAMP)
	$(BIN)/dialogue serve --activities examples/activities --segments examples/segments

# Re-pin: resolve requirements.in in a throw-away venv and freeze it.
lock:
	rm -rf /tmp/dialogue-lock && $(PYTHON) -m venv /tmp/dialogue-lock
	/tmp/dialogue-lock/bin/pip install --quiet -r requirements.in
	/tmp/dialogue-lock/bin/pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
