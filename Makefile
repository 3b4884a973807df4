# Hippo — make prints the targets.
GO      ?= go
PKGS    := ./...
RACE    := ./internal/engine/... ./internal/index/... ./internal/store/...

.PHONY: help run build test test-race lint bench e2e fuzz deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install the data set and Go modules the tests need
	@scripts/deps.sh

run: ## run Hippo on its embedded store in ./hippo-data
	$(GO) run ./cmd/hippo serve

build: ## build ./hippo
	$(GO) build -o hippo ./cmd/hippo

test: deps ## the whole suite: vet, unit, race on the concurrent core, end-to-end
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -race -timeout 10m $(RACE)

test-race: deps ## every package under the race detector
	$(GO) test -count=1 -race -timeout 20m $(PKGS)

lint: ## gofmt and vet
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet $(PKGS)

e2e: deps ## only the end-to-end tests against the real binary
	$(GO) test -count=1 -v ./e2e/

bench: deps build ## the product benchmarks (docs/benchmarks.md)
	./hippo bench

fuzz: ## each fuzz target for 30 s
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/filter/
	$(GO) test -run '^$$' -fuzz FuzzLineReader -fuzztime 30s ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz FuzzJSONVector -fuzztime 30s ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz FuzzRecordLine -fuzztime 30s ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 30s ./internal/index/hnsw/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 30s ./internal/store/
