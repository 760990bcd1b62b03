# nixcfs. Two set-up commands work on a fresh Debian 12 machine as root:
#   make test   installs what it needs, runs every test (end-to-end ones in the test host)
#   make demo   installs what it needs, builds, boots, mounts and walks the main job
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
DEB_PACKAGES := nix-bin fuse3 systemd-container iproute2 vim-tiny python3 curl tmux psmisc busybox-static bash-static
BUILD := build
TEST_PACKAGES := ./ops ./guest ./fs ./cmd/nixcfs

.PHONY: all deps build crash-binary guest test unit-test integration-test test-binaries bench demo clean fmt vet

all: build

# Debian packages the tests and the demo drive for real.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

guest:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o guest/bin/init ./guest/init

build: guest
	$(GO) build -o $(BUILD)/nixcfs ./cmd/nixcfs

# The same binary with crash points (internal/crash), for the crash tests only.
crash-binary: guest
	$(GO) build -tags crashpoints -o $(BUILD)/nixcfs-crash ./cmd/nixcfs

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go') $$(find . -name '*.go' -newer go.mod -not -path './build/*'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Test binaries for the test host, which has no Go module cache or network.
test-binaries: build crash-binary
	@mkdir -p $(BUILD)/tests
	@for p in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		n=$$(echo $$p | tr / _); $(GO) test -c -o $(BUILD)/tests/$$n.test $$p || exit 1; \
	done

unit-test: build
	$(GO) test -count=1 ./...

integration-test: test-binaries
	testhost/run.sh testhost/integration.sh $(BUILD)/tests

test: deps vet unit-test integration-test

# Figures for speed and memory, on the real stack inside the test host.
bench: deps test-binaries
	testhost/run.sh testhost/bench.sh $(BUILD)/tests

demo: deps build
	testhost/demo.sh

clean:
	rm -rf $(BUILD) guest/bin
