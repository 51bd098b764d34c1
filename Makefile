# mobileha: the two commands of a fresh machine are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The ebpf data plane's toolchain; qemu and Debian's kernel for the kernel backend's VM test.
BPF_PACKAGES := clang llvm libbpf-dev bpftool
APT_PACKAGES := tshark freeradius nftables iproute2 tcpdump nginx-light libnginx-mod-stream \
	keepalived iputils-arping iputils-ping iperf3 $(BPF_PACKAGES) qemu-system-x86 linux-image-amd64 \
	busybox-static
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
BPF_SRC := src/mobileha/dataplane/bpf/tunnel.bpf.c
BPF_OBJ := $(BPF_SRC:.c=.o)
BPF_CFLAGS := -O2 -g -Wall -target bpf -I/usr/include/$(shell uname -m)-linux-gnu

.PHONY: demo test test-full check lint typecheck unit bench bench-quiet apt apt-bpf venv bpf clean install uninstall

demo: $(STAMP)
	$(BIN)/mobileha demo

test: apt $(STAMP) bpf
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q --durations=25

# The namespace and VM scenarios at their acceptance sizes (the suite runs smaller samples
# to stay within its 20 minutes): 20 kill -9 trials, 20 roaming moves, 20,000 bindings
# downloaded, the ebpf backend inside the Debian-kernel guest too.
test-full: apt $(STAMP) bpf
	MOBILEHA_TAKEOVER_TRIALS=20 MOBILEHA_ROAM_MOVES=20 MOBILEHA_DOWNLOAD_BINDINGS=20000 \
	MOBILEHA_VM_BACKENDS="kernel ebpf" $(BIN)/pytest -q --durations=25 tests/netns tests/vm

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/property

# Every acceptance benchmark of the performance work in one run, one table with the baselines
# of the same run, the date and the load average (take the figures on a quiet machine).
bench-quiet: $(STAMP) bpf
	$(BIN)/python bench/acceptance.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

venv: $(STAMP) bpf

# The BPF programs of the ebpf data plane, compiled at install time (never committed).
bpf: $(BPF_OBJ)

$(BPF_OBJ): $(BPF_SRC)
	@command -v clang >/dev/null && [ -e /usr/include/bpf/bpf_helpers.h ] || $(MAKE) --no-print-directory apt-bpf
	@if command -v clang >/dev/null && [ -e /usr/include/bpf/bpf_helpers.h ]; then \
		echo "bpf: clang $(BPF_SRC)"; clang $(BPF_CFLAGS) -c $(BPF_SRC) -o $(BPF_OBJ); \
	else echo "bpf: no clang/libbpf-dev: the ebpf data plane is unavailable (its tests skip)"; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==24.3.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# System packages the tests use (tshark, FreeRADIUS, nftables, nginx, keepalived...).
# Installed only when running as root and something is missing; tests skip with a reason otherwise.
apt-bpf:
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(BPF_PACKAGES)"

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "apt: all test packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "apt: installing$$missing"; \
		apt-get update -qq && \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "apt: not root, missing$$missing (the tests that need them will skip)"; fi

# `make install` (root): the package in its own virtualenv under $(PREFIX)/lib/mobileha, the
# command in $(PREFIX)/bin (where the unit expects it), the systemd unit, /etc/mobileha for
# the configs and the README as the unit's documentation. DESTDIR stages it for packaging.
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: bpf
	$(PY) -m venv $(DESTDIR)$(PREFIX)/lib/mobileha
	$(DESTDIR)$(PREFIX)/lib/mobileha/bin/python -m pip install -q .
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/mobileha \
		$(DESTDIR)$(PREFIX)/share/doc/mobileha
	ln -sf $(PREFIX)/lib/mobileha/bin/mobileha $(DESTDIR)$(PREFIX)/bin/mobileha
	install -m 644 examples/mobileha@.service $(DESTDIR)$(UNITDIR)/mobileha@.service
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/mobileha/README.md
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then systemctl daemon-reload || true; fi
	@echo "installed: $(PREFIX)/bin/mobileha, $(UNITDIR)/mobileha@.service; configs go to /etc/mobileha/<name>.toml"

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/lib/mobileha $(DESTDIR)$(PREFIX)/share/doc/mobileha
	rm -f $(DESTDIR)$(PREFIX)/bin/mobileha $(DESTDIR)$(UNITDIR)/mobileha@.service

bench: $(STAMP)
	for b in bench/*.py; do [ $$b = bench/acceptance.py ] && continue; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(BPF_OBJ)
