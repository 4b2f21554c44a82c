# duosync — `make demo` runs the whole job on an embedded Duo emulator;
# `make test` runs vet and the race-enabled test suite (what CI runs).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN       := bin/duosync
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME  ?= 60s

.PHONY: all build demo test test-short bench fuzz chaos lint test-deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/duosync

demo: build
	./$(BIN) demo

test:
	$(GO) vet ./...
	$(GO) test -race -timeout 30m ./...

test-short:
	$(GO) test -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# Each fuzz target for $(FUZZTIME); `make test` already runs their seed corpora.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The long chaos run; `make test` runs a short form.
chaos:
	DUOSYNC_CHAOS=long $(GO) test -run 'Chaos' -timeout 60m -v ./cmd/duosync

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"

# What the email and report tests use: mailpit (a real SMTP server, from the
# Go module proxy) and Debian's chromium. Tests install mailpit themselves
# when it is missing; chromium needs root (apt).
test-deps:
	$(GO) install github.com/axllent/mailpit@v1.33.1
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || \
	  echo "chromium could not be installed: the HTML screenshot test will say it skipped"

clean:
	rm -rf bin
