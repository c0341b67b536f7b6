# The two commands a fresh machine needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint messages install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Embedded defaults: SQLite and Celery's filesystem broker under var/, e-mails as files
# under var/mail/, the app's own error pages (DEBUG=true make run for Django's debug pages).
# config/run.py runs web, worker and beat, prints the address last and stops on Ctrl-C.
run: install
	mkdir -p var
	$(BIN)/pybabel --quiet compile -d locale -D django
	LOCAL_RUN=true $(BIN)/python manage.py migrate --noinput -v0
	LOCAL_RUN=true $(BIN)/python manage.py seed_demo --if-empty
	@LOCAL_RUN=true PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m config.run

test: install
	$(BIN)/pybabel --quiet compile -d locale -D django
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run -v0 --settings=config.settings_test
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m tests.benchmarks.run

lint: install
	$(BIN)/ruff check .

# Refresh the French catalogue after changing strings (needs GNU gettext).
messages: install
	DEBUG=true $(BIN)/python manage.py makemessages -l fr --ignore=.venv --ignore=var --ignore=tests
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
