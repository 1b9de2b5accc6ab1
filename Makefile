# zae-limiter for Go. `make run` starts the whole stack locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
DDB_TEST_PORT ?= 18000
# DynamoDB Local serves a few hundred writes/s: a fixed count keeps `make bench` to minutes.
BENCHTIME ?= 200x
FUNCTIONS := acquire admin aggregator

.PHONY: all deps build test test-go test-race vet fmt-check bench clean

include mk/*.mk

all: build

## deps: install what is missing (DynamoDB Local from npm into .local/; Go modules by go.mod)
deps:
	@scripts/ddb-local.sh install
	@$(GO) mod download

## build: one linux/arm64 bootstrap per function in bin/<function>/bootstrap
build:
	@for f in $(FUNCTIONS); do \
	  [ -f functions/$$f/main.go ] || continue; \
	  mkdir -p bin/$$f; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	    -o bin/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## vet / fmt-check: static checks
vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

## test: every test, against one DynamoDB Local started for the run
test: deps fmt-check vet test-go test-infra vet-infra

test-go:
	@scripts/ddb-local.sh stop $(DDB_TEST_PORT); scripts/ddb-local.sh start $(DDB_TEST_PORT)
	@trap 'scripts/ddb-local.sh stop $(DDB_TEST_PORT)' EXIT; \
	  ZL_DYNAMODB_ENDPOINT=http://127.0.0.1:$(DDB_TEST_PORT) $(GO) test -count=1 ./...

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
