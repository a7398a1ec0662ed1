# firebreak.runbooks — the two commands that matter: `make drill` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= service_down
PYTEST_WORKERS ?= 4
# loadgroup: tests marked xdist_group run on one worker (test_awx_loader.py shares one load, which every other
# worker would wait for); the rest are spread as with --dist load.
PYTEST_DIST := --dist loadgroup
# Where ansible-test wants the collection: a path ending in ansible_collections/firebreak/runbooks.
SANITY_ROOT := $(CURDIR)/.sanity/ansible_collections/firebreak/runbooks
SANITY_TESTS ?= validate-modules ansible-doc action-plugin-docs runtime-metadata compile import pep8 yamllint shebang symlinks no-smart-quotes line-endings empty-init use-argspec-type-path replace-urlopen no-get-exception use-compat-six no-assert changelog
GET_PIP := $(HOME)/.ansible/test/cache/get_pip_24_2.py
# ansible-rulebook (extensions/eda) needs a Java 17+ runtime: JAVA_HOME's, else the first java on PATH.
JAVA_CHECK = java=$${JAVA_HOME:+$$JAVA_HOME/bin/}java; \
  v=$$($$java -version 2>&1 | sed -n 's/.*version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -1); \
  if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
    echo "note: ansible-rulebook (extensions/eda) needs Java 17+ (found: $${v:-none});" \
      "install it with: apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME" >&2; fi
# Tools run from the venv (ansible-lint and ansible-test look for their siblings on PATH).
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv test proof unit integration drill drill-all sandbox inject lint sanity bench build docs awx clean lock

help:
	@echo "make drill [SCENARIO=name]  run a scenario end to end against the local sandbox"
	@echo "make drill-all [BREAK=name] every drill on shared sandboxes, a score table (incidents/drill-all/score.md);"
	@echo "                            BREAK: run those drills broken (fix not applied), they must FAIL"
	@echo "make test                   lint + unit + integration + drill tests"
	@echo "make proof                  the proof suites: faults, kills, load, bad input (CI runs them after make test)"
	@echo "make sandbox                run the sandbox in the foreground and print its endpoints"
	@echo "make inject SCENARIO=name   inject that drill's fault into the running \`make sandbox\`; prints its extra vars"
	@echo "make lint                   ansible-lint, yamllint, ruff, ansible-test sanity"
	@echo "make bench                  speed targets, measured side by side (never part of make test)"
	@echo "make build                  build the collection tarball"
	@echo "make docs                   write each role README's variable table from meta/argument_specs.yml"
	@echo "make awx                    write awx/ surveys, job templates and workflows from the scenarios' specs"

venv: $(STAMP)

$(STAMP): requirements.txt
	@$(JAVA_CHECK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install -q -r requirements.in
	{ echo "# Pinned lock for .venv: pip freeze of requirements.in (python 3.11). Regenerate: make lock"; \
	  .lockvenv/bin/pip freeze; } > requirements.txt && rm -rf .lockvenv

drill: $(STAMP)
	$(BIN)/python -m sandbox.drill $(SCENARIO)

# Every drill, DRILL_JOBS (default 2) sandboxes reset between drills; the score table is printed and written to
# incidents/drill-all/score.md. BREAK=name[,name]: those drills run broken (the runbook in check mode), must FAIL.
drill-all: $(STAMP)
	$(BIN)/python -m sandbox.drill_all $(if $(BREAK),--break $(BREAK))

sandbox: $(STAMP)
	$(BIN)/python -m sandbox

# Into the sandbox `make sandbox` runs (found by its env.sh; SANDBOX_ENV=path for another): the drill's fault, and
# the scenario's extra vars as JSON on the last line, to run the playbook by hand (--check first).
inject: $(STAMP)
	$(BIN)/python -m sandbox.inject $(SCENARIO) $(if $(SANDBOX_ENV),--env-file $(SANDBOX_ENV))

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q -n $(PYTEST_WORKERS) $(PYTEST_DIST) || [ $$? -eq 5 ]

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration -q -n $(PYTEST_WORKERS) $(PYTEST_DIST) --durations=15 || [ $$? -eq 5 ]

test: lint
	$(BIN)/python -m pytest tests -m "not proof" -q -n $(PYTEST_WORKERS) $(PYTEST_DIST) --durations=20 || [ $$? -eq 5 ]

# Proof under pressure (tests marked proof): every scenario's calls under faults, kills mid-run, many incidents at
# once, the bad-input matrix. Bounded in count and time, loopback only; .ci/run runs it after make test.
proof: $(STAMP)
	$(BIN)/python -m pytest tests -m proof -q -n $(PYTEST_WORKERS) $(PYTEST_DIST) --durations=20 || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint --profile production --strict
	$(MAKE) sanity

# ansible-test downloads a pip bootstrap script from a host these machines cannot reach, and drops
# PIP_* from the environment; a cached script of ours bootstraps pip offline and passes the CA bundle.
$(GET_PIP): .ci/get_pip.py
	mkdir -p $(dir $@) && cp .ci/get_pip.py $@

# The copy gets the collections ours depends on (doc fragments, module_utils) beside it, as in a real install.
sanity: $(STAMP) $(GET_PIP)
	rm -rf .sanity && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' \
	  | xargs -0 cp --parents -t $(SANITY_ROOT)
	for dep in amazon kubernetes; do ln -s $(CURDIR)/$(VENV)/lib/python3.11/site-packages/ansible_collections/$$dep \
	  $(CURDIR)/.sanity/ansible_collections/$$dep; done
	cd $(SANITY_ROOT) && git init -q && git add -A \
	  && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --venv \
	     $(addprefix --test ,$(SANITY_TESTS))

bench: $(STAMP)
	$(BIN)/python -m bench.run

build: $(STAMP)
	$(BIN)/ansible-galaxy collection build --force .

# roles/*/README.md variable tables, generated from meta/argument_specs.yml (a unit test fails when one differs).
docs: $(STAMP)
	$(BIN)/python tools/role_readme.py

# awx/surveys/*.json, awx/job_templates.yml, awx/workflows.yml from playbooks/<scenario>.meta.yml and the roles' specs
# (tests/unit/test_awx_surveys.py fails when one differs). Load them into AWX: ansible-playbook awx/load.yml.
awx: $(STAMP)
	$(BIN)/python tools/awx_surveys.py

clean:
	rm -rf .sanity .pytest_cache .ruff_cache firebreak-runbooks-*.tar.gz
