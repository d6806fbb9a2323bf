# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := bot

.PHONY: run test worker install clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## Serve on 127.0.0.1:5000 with demo data on SQLite, the console transport and the scheduler.
run: $(STAMP)
	$(BIN)/flask --app bot db upgrade
	$(BIN)/flask --app bot demo
	$(BIN)/flask --app bot triage --warm
	@echo "worker: ticking every minute (log in instance/worker.log)"
	@mkdir -p instance
	$(BIN)/flask --app bot worker > instance/worker.log 2>&1 & echo $$! > instance/worker.pid; \
	trap 'kill $$(cat instance/worker.pid) 2>/dev/null' EXIT INT TERM; \
	TWILIO_SKIP_SIGNATURE=$${TWILIO_SKIP_SIGNATURE-1} $(BIN)/flask --app bot run --host 127.0.0.1 --port 5000

## The whole test suite: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) ; } \
		|| echo "!! chromium is missing and could not be installed: browser tests will be SKIPPED"
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

worker: $(STAMP)
	$(BIN)/flask --app bot worker

clean:
	rm -rf $(VENV) instance .pytest_cache
