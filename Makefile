# The two set-up commands (README): `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHECKOV_VENV := .venv-checkov
CHECKOV      := checkov==3.3.30

.PHONY: demo test check bench lint schema serve lock clean browser-test screenshot

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
	$(BIN)/pytest -n 2 --dist worksteal  # two workers, each its own embedded AWS; idle one steals

# The report in headless chromium (Debian's package, installed by scripts/install-browser.sh;
# skipped with the reason when it cannot be). `make test` runs it too.
browser-test: $(STAMP)
	$(BIN)/pytest tests/e2e/test_browser.py

# The README's screenshot of the demo's report (docs/report.png).
screenshot: demo
	$(BIN)/python scripts/screenshot.py

# checkov in a venv of its own (it pins an old boto3). Skips: .checkov.yaml and the template's
# Metadata, each with its reason. BC_SKIP_MAPPING: no download of Prisma Cloud's guidelines.
$(CHECKOV_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check $(CHECKOV)
	@touch $@

check: $(CHECKOV_VENV)/.installed
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f infra/template.yaml --config-file .checkov.yaml

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

# Re-pin: resolve requirements.in (development) in a throw-away venv and freeze it; resolve the
# Lambda layer's runtime lock from pyproject's dependencies alone, in another.
lock:
	rm -rf /tmp/dialogue-lock && $(PYTHON) -m venv /tmp/dialogue-lock
	/tmp/dialogue-lock/bin/pip install --quiet -r requirements.in
	/tmp/dialogue-lock/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf /tmp/dialogue-layer-lock && $(PYTHON) -m venv /tmp/dialogue-layer-lock
	/tmp/dialogue-layer-lock/bin/pip install --quiet .
	sed -n '/^#/p' layers/engine/requirements.txt > /tmp/dialogue-layer-header
	( cat /tmp/dialogue-layer-header; /tmp/dialogue-layer-lock/bin/pip freeze --exclude dialogue ) \
	  > layers/engine/requirements.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .mypy_cache
