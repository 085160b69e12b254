# `make run`: set up a virtualenv and run the agent on the embedded default config,
# keeping its state under ./var. `make test`: set up and run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean install uninstall incidents status

# `make install` (as root) puts monitord on a Debian server: a virtualenv in /opt/monitord,
# the stock packs and fixes in /usr/share/monitord, the example config in /etc/monitord
# (never overwriting one that is there), and the systemd units. DESTDIR stages it elsewhere.
DESTDIR  ?=
OPT      := $(DESTDIR)/opt/monitord
SHARE    := $(DESTDIR)/usr/share/monitord
ETC      := $(DESTDIR)/etc/monitord
UNITS    := $(DESTDIR)/etc/systemd/system

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/monitord run -c etc/monitord/monitord.toml --state-dir var/lib/monitord

incidents: $(STAMP)
	$(BIN)/monitord incidents list --all -c etc/monitord/monitord.toml --state-dir var/lib/monitord

status: $(STAMP)
	$(BIN)/monitord status -c etc/monitord/monitord.toml

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check monitord tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/http_sweep.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

install:
	$(PYTHON) -m venv $(OPT)
	$(OPT)/bin/pip install --quiet --upgrade pip
	$(OPT)/bin/pip install --quiet .
	install -d -m 755 $(SHARE)/checks $(SHARE)/remediations $(ETC)/checks.d $(UNITS)
	install -d -m 700 $(ETC)/remediations.d
	install -m 644 checks/*.toml $(SHARE)/checks/
	install -m 755 remediations/* $(SHARE)/remediations/
	test -e $(ETC)/monitord.toml || install -m 644 etc/monitord/monitord.toml $(ETC)/
	test -e $(ETC)/central.toml || install -m 600 etc/monitord/central.toml $(ETC)/
	install -m 644 systemd/monitord.service systemd/monitord-central.service $(UNITS)/
	# monitord-central@PORT: more processes on one host, one config (README).
	sed -e 's|central.toml$$|central.toml --listen 127.0.0.1:%i|' \
	    -e 's|^Description=.*|& on port %i|' systemd/monitord-central.service \
	    > $(UNITS)/monitord-central@.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; start it with: systemctl enable --now monitord"

# Removes what install put in place except your config (/etc/monitord) and the daemon's
# state and incidents (/var/lib/monitord), which are yours to keep or delete.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now monitord monitord-central 2>/dev/null || true; fi
	rm -f $(UNITS)/monitord.service $(UNITS)/monitord-central.service \
	    $(UNITS)/monitord-central@.service
	rm -rf $(OPT) $(SHARE)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "removed; kept $(ETC) and /var/lib/monitord"
