# selfhost.pi: two commands for a fresh machine.
#   make demo   converge playbooks/site.yml against a local Debian 13 test host
#   make test   lint, sanity, unit tests and the molecule scenarios
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOST ?= selfhost-demo
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export CONTAINERS_CONF := $(CURDIR)/tests/host/containers.conf
export PATH := $(CURDIR)/$(BIN):$(PATH)
# nginx, restic: unit tests run the real `nginx -t` and restic in temporary directories (never a
# running nginx: when deps installs it, its service is stopped and disabled).
APT_PACKAGES := python3-venv podman runc debootstrap busybox-static uidmap slirp4netns git shellcheck rsync curl nginx restic openssh-client
COLLECTION_LINK := .build/collections/ansible_collections/selfhost/pi

.PHONY: demo demo-clean test lint sanity unit molecule bench bench-backup deps images collection clean

## Controller set-up: Debian packages, then a venv with the pinned Python tools.
deps: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  case "$$missing" in *nginx*) systemctl disable --now nginx.service >/dev/null 2>&1 \
	    || service nginx stop >/dev/null 2>&1 || true;; esac; \
	fi
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

## The repository is the collection; link it where Ansible looks for selfhost.pi.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK)) && ln -sfn $(CURDIR) $(COLLECTION_LINK)

## The example services' images (no registry reachable: built from busybox,
## from the test host's Python for the stateful notes app, the pod's board
## app and datasette (from PyPI), and from Debian 13 packages for Valkey).
images: deps
	@tests/images/build.sh localhost/selfhost-hello:1 inventory/files/hello .build/images
	@tests/images/build-python.sh localhost/notes:1 tests/images/notes .build/images
	@tests/images/build-python.sh localhost/board:1 tests/images/board .build/images
	@tests/images/build-python.sh localhost/datasette:1 tests/images/datasette .build/images
	@tests/images/build-debian.sh localhost/valkey:1 tests/images/valkey .build/images

demo: deps collection images
	@podman container exists $(DEMO_HOST) && [ "$$(podman inspect -f '{{.State.Running}}' $(DEMO_HOST))" = true ] \
	  || tests/host/start.sh $(DEMO_HOST) -v $(DEMO_HOST)-disk:/mnt/backup >/dev/null
	$(BIN)/ansible-playbook playbooks/site.yml
	@tests/host/where.sh $(DEMO_HOST)

demo-clean:
	tests/host/stop.sh $(DEMO_HOST)
	podman volume rm -f $(DEMO_HOST)-disk

# lint, sanity and unit run beside the molecule lanes, at the lowest CPU and I/O
# priority, instead of before them (BESIDE in tests/molecule-lanes.sh); each
# prints its output when it ends, and a failure fails `make test`.
test: deps collection images
	BESIDE="lint sanity unit" $(MOLECULE_LANES)

lint: deps collection
	$(BIN)/ansible-lint --profile production

# ansible-test bootstraps pip in its venvs with a get-pip script it downloads
# from a host these machines cannot reach; its own error message says to place
# one in its cache. Ours uses Python's bundled ensurepip.
GET_PIP_CACHE := $(shell python3 -c "import os; print(os.path.expanduser('~'))")/.ansible/test/cache/get_pip_24_2.py
sanity: deps
	@[ -f $(GET_PIP_CACHE) ] || install -D -m 0644 tests/sanity/get_pip_standin.py $(GET_PIP_CACHE)
	@rm -rf .build/sanity && mkdir -p .build/sanity/ansible_collections/selfhost/pi
	@rsync -a --exclude .venv --exclude .build --exclude .git --exclude .cache --exclude __pycache__ --exclude .pytest_cache \
	  ./ .build/sanity/ansible_collections/selfhost/pi/
	@# ansible-test lists a collection's files through git.
	cd .build/sanity/ansible_collections/selfhost/pi && git init -q && git add -A && \
	  git -c user.name=sanity -c user.email=sanity@localhost commit -q -m sanity && \
	  $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --requirements -v $(SANITY_ARGS) plugins/

unit: deps collection
	$(BIN)/python -m pytest -q tests/unit tests/integration

## Push-to-deploy figures: signed request -> new version answering, failed requests during an update.
.PHONY: bench-updates
bench-updates: deps collection
	tests/bench/update-hook.sh

## Every scenario, in two lanes that run side by side (tests/molecule-lanes.sh);
## a scenario missing from the lanes fails the run.
MOLECULE_LANE_1 := default pods tls plan ssh
MOLECULE_LANE_2 := updates disaster-recovery reconcile
MOLECULE_LANES = SELFHOST_TEST_IMAGE=$$(tests/host/build-image.sh) MOLECULE=$(BIN)/molecule MAKE="$(MAKE)" \
	  tests/molecule-lanes.sh "$(MOLECULE_LANE_1)" "$(MOLECULE_LANE_2)"
molecule: deps collection images
	$(MOLECULE_LANES)

## One scenario, e.g. `make molecule-ssh`.
molecule-%: deps collection images
	SELFHOST_TEST_IMAGE=$$(tests/host/build-image.sh) $(BIN)/molecule test -s $*

bench: deps collection
	tests/bench/run.sh

## The Pi's architecture: site.yml over SSH on an emulated Debian 13 arm64 host (qemu-system-aarch64,
## a disk image cached by its build script's hash). Slow (tens of minutes), so not part of `make test`.
.PHONY: smoke-arm64
smoke-arm64: deps collection
	tests/arm64/smoke.sh

## Backup time and repository size for a generated data set (1 GiB by default).
bench-backup: deps collection
	tests/bench/backup.sh

clean:
	rm -rf .build .cache
