# Hippo — make prints the targets.
GO      ?= go
PKGS    := ./...
RACE    := ./internal/engine/... ./internal/index/... ./internal/store/... ./internal/auth/... ./internal/h1/... ./internal/feed/... ./internal/httpapi/...

.PHONY: help run build test test-race lint bench e2e fuzz fuzz-ci deps

FUZZTIME ?= 5s

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install the data set and Go modules the tests need
	@scripts/deps.sh

run: ## run Hippo on its embedded store in ./hippo-data
	$(GO) run ./cmd/hippo serve

build: ## build ./hippo
	$(GO) build -o hippo ./cmd/hippo

test: deps ## the whole suite: vet, unit, race on the concurrent core, end-to-end, fuzz-ci
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -race -timeout 10m $(RACE)
	$(MAKE) --no-print-directory fuzz-ci

test-race: deps ## every package under the race detector
	$(GO) test -count=1 -race -timeout 20m $(PKGS)

lint: ## gofmt and vet
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet $(PKGS)

e2e: deps ## only the end-to-end tests against the real binary
	$(GO) test -count=1 -v ./e2e/

bench: deps build ## the product benchmarks (docs/benchmarks.md)
	./hippo bench

fuzz: ## every fuzz target for 30 s
	$(MAKE) --no-print-directory fuzz-ci FUZZTIME=30s

fuzz-ci: ## every fuzz target for FUZZTIME, 5 s by default (about 2 min in all)
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
