# `make run`: set up a virtualenv with what the daemon needs and run it on the example
# config (etc/monitord/monitord.toml), keeping its state and incidents under ./var.
# `make test`: add the test and lint tools and run the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# One virtualenv at two levels: the daemon's own dependencies (make run), or those and
# the development extras (make test).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CONFIG  := etc/monitord/monitord.toml
STATE   := var/lib/monitord
PIDFILE := var/run/monitord.pid
TRY     := etc/monitord/checks.d/try-failure.toml

.PHONY: run test lint bench clean install uninstall incidents status try-failure \
        try-failure-off docs deb

# `make install` (as root) puts monitord on a server from this checkout, for those who do
# not use the Debian package (make deb): a virtualenv in /opt/monitord, the stock packs and
# fixes in /usr/share/monitord, the example config in /etc/monitord (never overwriting one
# that is there), the systemd units and the central service's system user. DESTDIR stages
# it elsewhere (no user is made then).
DESTDIR  ?=
VENV_DIR := /opt/monitord
OPT      := $(DESTDIR)$(VENV_DIR)
SHARE    := $(DESTDIR)/usr/share/monitord
ETC      := $(DESTDIR)/etc/monitord
UNITS    := $(DESTDIR)/etc/systemd/system

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

# The shell writes its PID and becomes the daemon (exec), so make try-failure can send
# it SIGHUP to reload.
run: $(RUN_STAMP)
	@mkdir -p $(dir $(PIDFILE))
	@echo "Ctrl-C stops it. To try a failure: make try-failure in another terminal, then make incidents."
	@echo $$$$ > $(PIDFILE); exec $(BIN)/monitord run -c $(CONFIG) --state-dir $(STATE)

incidents: $(RUN_STAMP)
	@$(BIN)/monitord incidents list --all -c $(CONFIG) --state-dir $(STATE)

# monitord status says what it sees, or that nothing runs, in its own words (and exits
# 2 or 3 for scripts); make's "Error 3" line after it would only be noise.
status: $(RUN_STAMP)
	@$(BIN)/monitord status -c $(CONFIG) || true

# A check of a port nothing listens on, added to the running `make run` daemon (which is
# told to reload): it fails hard within seconds (a failure is confirmed at retry_every),
# and having no fix, its incident opens at once.
try-failure: $(RUN_STAMP)
	@pid=$$($(make_run_pid)) || { echo "make try-failure: start make run first, in another terminal"; exit 1; }; \
	cp docs/try-failure.toml $(TRY) && kill -HUP $$pid
	@echo "Added the check try-failure (127.0.0.1:8469, where nothing listens) to make run."
	@echo "Its incident opens within seconds: make incidents."
	@echo "To see it recover: python3 -m http.server --bind 127.0.0.1 8469. To remove it: make try-failure-off."

try-failure-off:
	@rm -f $(TRY)
	@if pid=$$($(make_run_pid)); then kill -HUP $$pid; fi
	@echo "Removed the check try-failure."

# Prints the PID of the running `make run` daemon, if its pidfile names a live `monitord
# run` (a stale pidfile's number may belong to another process by now).
make_run_pid = pid=$$(cat $(PIDFILE) 2>/dev/null) && \
	tr '\0' ' ' 2>/dev/null < /proc/$$pid/cmdline | grep -q 'monitord run ' && echo $$pid

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check monitord tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/mypy tools

# The man pages monitord(8), monitord.toml(5) and monitord-central.toml(5), and bash and
# zsh completion, as the Debian package installs them: man -l build/docs/monitord.8
docs: $(DEV_STAMP)
	$(BIN)/python tools/gendocs.py build/docs

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/http_sweep.py

# `make deb`: the Debian package (debian/), into DEB_OUT. It is built from a copy of this
# tree without what .gitignore names (.venv, var, build...), because dpkg-buildpackage writes
# beside the source and leaves its work in it. DEB_VERSION=0.1.0+local1 builds the same
# tree under another version. Then lintian says what it thinks (LINTIAN=: skips it; the
# overrides in debian/monitord.lintian-overrides explain what is left, down to --info
# --pedantic). Needs: apt-get build-dep ./ (and lintian).
DEB_OUT   ?= .
DEB_BUILD ?= build/deb
LINTIAN   ?= lintian
deb:
	rm -rf $(DEB_BUILD) && mkdir -p $(DEB_BUILD)/src
	tar -c --exclude-vcs --exclude=./.venv --exclude=./var --exclude=./build --exclude=./dist \
	    --exclude=__pycache__ --exclude='*.egg-info' --exclude='./.*_cache' \
	    --exclude='./monitord_*.deb' --exclude=./$(TRY) -f - . | tar -x -C $(DEB_BUILD)/src
	@if [ -n "$(DEB_VERSION)" ]; then cd $(DEB_BUILD)/src && \
		{ printf 'monitord (%s) unstable; urgency=medium\n\n  * Built as %s.\n\n -- %s  %s\n\n' \
		    "$(DEB_VERSION)" "$(DEB_VERSION)" "$$(dpkg-parsechangelog -S Maintainer)" \
		    "$$(date -R)"; cat debian/changelog; } > debian/changelog.new && \
		mv debian/changelog.new debian/changelog; fi
	cd $(DEB_BUILD)/src && dpkg-buildpackage --build=binary --no-sign
	@mkdir -p $(DEB_OUT) && for deb in $(DEB_BUILD)/monitord_*.deb; do \
		mv $$deb $(DEB_OUT)/ && echo "built $(DEB_OUT)/$${deb##*/}" && \
		if command -v $(LINTIAN) >/dev/null; then $(LINTIAN) --info --pedantic $(DEB_OUT)/$${deb##*/}; fi; \
	done

clean:
	rm -rf $(VENV) var $(TRY) build .pytest_cache .mypy_cache .ruff_cache

install:
	$(PYTHON) -m venv $(OPT)
	$(OPT)/bin/pip install --quiet --upgrade pip
	$(OPT)/bin/pip install --quiet .
	install -d -m 755 $(SHARE)/checks $(SHARE)/remediations $(ETC)/checks.d $(UNITS)
	install -d -m 700 $(ETC)/remediations.d
	install -m 644 checks/*.toml $(SHARE)/checks/
	install -m 755 remediations/* $(SHARE)/remediations/
	test -e $(ETC)/monitord.toml || install -m 644 etc/monitord/monitord.toml $(ETC)/
	@if [ -z "$(DESTDIR)" ] && ! getent passwd monitord-central >/dev/null; then \
		adduser --system --group --no-create-home --home /var/lib/monitord-central \
		    --gecos "monitord central service" monitord-central; fi
	@# The central service reads its config as its own user, through the group.
	@if [ ! -e $(ETC)/central.toml ]; then \
		install -m 640 etc/monitord/central.toml $(ETC)/ && \
		if [ -z "$(DESTDIR)" ]; then chgrp monitord-central $(ETC)/central.toml; fi; fi
	@# The units name the packaged /usr/bin/monitord; here it is the virtualenv's.
	for unit in monitord.service monitord-central.service monitord-central@.service; do \
		sed 's|=/usr/bin/monitord |=$(VENV_DIR)/bin/monitord |' systemd/$$unit \
		    > $(UNITS)/$$unit && chmod 644 $(UNITS)/$$unit || exit 1; done
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; start it with: systemctl enable --now monitord"

# Removes what install put in place except your config (/etc/monitord), the daemon's
# state and incidents (/var/lib/monitord, /var/lib/monitord-central), which are yours to
# keep or delete, and the system user monitord-central (`deluser --system monitord-central`
# once its files are gone).
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now monitord monitord-central 2>/dev/null || true; fi
	rm -f $(UNITS)/monitord.service $(UNITS)/monitord-central.service \
	    $(UNITS)/monitord-central@.service
	rm -rf $(OPT) $(SHARE)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "removed; kept $(ETC) and /var/lib/monitord"
