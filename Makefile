# nixcfs. Two set-up commands work on a fresh Debian 12 machine as root, with Go from
# go.dev in /usr/local/go (README: Set up):
#   make test     installs what it needs, runs every test (end-to-end ones in the test host)
#   make demo     installs what it needs, builds, boots, mounts and walks the main job
# and one installs it on a systemd host:
#   make install  [PREFIX=/usr/local] [DESTDIR=]: the binary, nixcfs.service, man pages
#                 and completions; make uninstall removes them
# Each target first checks what it needs (packaging/prereqs.sh), one line per thing missing.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
export GO
DEB_PACKAGES := nix-bin fuse3 systemd-container iproute2 vim-tiny python3 curl tmux psmisc busybox-static \
	bash-static bash-completion zsh fish groff-base
export DEB_PACKAGES
BUILD := build
PREREQS := packaging/prereqs.sh

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

# nixcfs --version: the version and commit git gives, when there is a git.
GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
VERSION := $(or $(shell git describe --tags --always --dirty 2>/dev/null),devel)
COMMIT := $(or $(GIT_COMMIT),unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GO_SOURCES := $(shell find cmd docs fs guest internal ops -name '*.go' ! -name '*_test.go' -o -name '*.md') go.mod go.sum
DOCS := $(BUILD)/man/man1/nixcfs.1 $(BUILD)/man/man5/nixcfs.5 \
	$(BUILD)/completions/nixcfs.bash $(BUILD)/completions/_nixcfs $(BUILD)/completions/nixcfs.fish
INSTALLED := $(BINDIR)/nixcfs $(UNITDIR)/nixcfs.service $(MANDIR)/man1/nixcfs.1 $(MANDIR)/man5/nixcfs.5 \
	$(BASHCOMPDIR)/nixcfs $(ZSHCOMPDIR)/_nixcfs $(FISHCOMPDIR)/nixcfs.fish

.PHONY: all deps build crash-binary docs man completions guest test unit-test integration-test test-binaries bench demo \
	clean fmt vet install uninstall check-nix check-vendor-hash vendor-hash prereqs-test prereqs-demo prereqs-bench FORCE

all: build

prereqs-test prereqs-demo prereqs-bench: prereqs-%:
	@$(PREREQS) $* go root fuse testhost apt

# Debian packages the tests and the demo drive for real.
deps:
	@$(PREREQS) deps root apt
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

guest:
	@$(PREREQS) guest go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o guest/bin/init ./guest/init

build: guest $(BUILD)/nixcfs

# Rebuilt when the version git gives changes; left alone where there is no git (the
# test host sees the tree, not its repository).
$(BUILD)/version: FORCE
	@mkdir -p $(BUILD)
	@if [ -n "$(GIT_COMMIT)" ] || [ ! -e $@ ]; then \
		echo '$(LDFLAGS)' | cmp -s - $@ || echo '$(LDFLAGS)' > $@; \
	fi

$(BUILD)/nixcfs: $(GO_SOURCES) $(BUILD)/version
	@$(PREREQS) build go
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/nixcfs

# The man pages and completions, from the command's own definition (gen-docs).
docs man completions: $(DOCS)

$(DOCS) &: $(BUILD)/nixcfs
	$(BUILD)/nixcfs gen-docs --man $(BUILD)/man --completions $(BUILD)/completions
	@touch $(DOCS)

# What installing needs is checked before anything is built; then the build (whose
# recipe checks Go when there is something to build), then the files.
install:
	@$(PREREQS) install $(if $(DESTDIR),,root systemd runtime)
	@$(MAKE) --no-print-directory $(BUILD)/nixcfs $(DOCS)
	install -D -m 0755 $(BUILD)/nixcfs $(DESTDIR)$(BINDIR)/nixcfs
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@bindir@|$(BINDIR)|g' packaging/nixcfs.service.in > $(DESTDIR)$(UNITDIR)/nixcfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/nixcfs.service
	install -D -m 0644 $(BUILD)/man/man1/nixcfs.1 $(DESTDIR)$(MANDIR)/man1/nixcfs.1
	install -D -m 0644 $(BUILD)/man/man5/nixcfs.5 $(DESTDIR)$(MANDIR)/man5/nixcfs.5
	install -D -m 0644 $(BUILD)/completions/nixcfs.bash $(DESTDIR)$(BASHCOMPDIR)/nixcfs
	install -D -m 0644 $(BUILD)/completions/_nixcfs $(DESTDIR)$(ZSHCOMPDIR)/_nixcfs
	install -D -m 0644 $(BUILD)/completions/nixcfs.fish $(DESTDIR)$(FISHCOMPDIR)/nixcfs.fish
	@if [ -z "$(DESTDIR)" ]; then \
		systemctl daemon-reload; \
		echo "installed; to mount /mnt/nixc now and at boot: systemctl enable --now nixcfs"; \
	fi

# Without DESTDIR the unit is first disabled and stopped, which unmounts.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -e $(UNITDIR)/nixcfs.service ] && [ "$$(cat /proc/1/comm)" = systemd ]; then \
		echo "systemctl disable --now nixcfs.service"; systemctl disable --now nixcfs.service; \
	fi
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/1/comm)" = systemd ]; then systemctl daemon-reload; fi

# The same binary with crash points (internal/crash), for the crash tests only.
crash-binary: guest
	$(GO) build -tags crashpoints -o $(BUILD)/nixcfs-crash ./cmd/nixcfs

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go') $$(find . -name '*.go' -newer go.mod -not -path './build/*'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# The Nix packaging, as far as this machine can check it without nixpkgs: every .nix
# file parses, the NixOS module's unit is the unit file (packaging tests), and the
# pinned vendorHash is the one go.mod and go.sum give.
check-nix: check-vendor-hash
	$(GO) test -count=1 -run 'Nix|Module|Flake' ./packaging

check-vendor-hash:
	packaging/vendor-hash.sh --check

# The vendorHash for nix/package.nix after go.mod or go.sum changed.
vendor-hash:
	@packaging/vendor-hash.sh

# Test binaries for the test host, which has no Go module cache or network.
test-binaries: build docs crash-binary
	@mkdir -p $(BUILD)/tests
	@for p in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		n=$$(echo $$p | tr / _); $(GO) test -c -o $(BUILD)/tests/$$n.test $$p || exit 1; \
	done

unit-test: build docs
	$(GO) test -count=1 ./...

integration-test: test-binaries
	testhost/run.sh testhost/integration.sh $(BUILD)/tests

test: prereqs-test deps vet check-vendor-hash unit-test integration-test

# Figures for speed and memory, on the real stack inside the test host.
bench: prereqs-bench deps test-binaries
	testhost/run.sh testhost/bench.sh $(BUILD)/tests

demo: prereqs-demo deps build
	testhost/demo.sh

clean:
	rm -rf $(BUILD) guest/bin
