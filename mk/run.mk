# mk/run.mk: the limiter on this machine. Included by the root Makefile (`include mk/*.mk`).
#
#   make run                      DynamoDB Local + table + both APIs at http://127.0.0.1:$(PORT)
#                                 (Ctrl-C stops the server, then DynamoDB Local)
#   make run PORT=9090            another port; DDB_PORT=... for DynamoDB Local's;
#                                 (the aggregator runs too: RUN_FLAGS=-aggregate=false leaves it out)
#   make devstack                 only build bin/devstack (cmd/devstack), what run and invoke run
#   make invoke FN=acquire EVENT=events/acquire/acquire.json
#                                 one function on one event (API Gateway or direct payload),
#                                 against the running `make run`'s DynamoDB or a temporary one
#   make rie                      install the Lambda Runtime Interface Emulator into .local/bin
#   make bench-http               the HTTP-stack benchmarks of docs/benchmarks-http.md
#   make fuzz-http                fuzz request decoding for FUZZTIME (default 30s)
#
# AWS_ENDPOINT_URL_DYNAMODB, when set, is used instead of starting DynamoDB Local.

GO         ?= go
PORT       ?= 8080
DDB_PORT   ?= 8000
TABLE_NAME ?= zae-limiter
LOG_LEVEL  ?= INFO
FN         ?= acquire
EVENT      ?=
FUZZTIME   ?= 30s
RUN_FLAGS  ?=
DEVSTACK := bin/devstack
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE        := .local/bin/aws-lambda-rie
BENCH_DDB_PORT ?= 18001
HTTP_BENCHTIME ?= 1000x

.PHONY: run invoke rie bench-http fuzz-http devstack

devstack:
	@$(GO) build -o $(DEVSTACK) ./cmd/devstack

run: devstack
	@[ -n "$$AWS_ENDPOINT_URL_DYNAMODB" ] || scripts/ddb-local.sh install
	@PORT=$(PORT) DDB_PORT=$(DDB_PORT) TABLE_NAME=$(TABLE_NAME) LOG_LEVEL=$(LOG_LEVEL) exec $(DEVSTACK) $(RUN_FLAGS)

invoke: devstack
	@[ -n "$(EVENT)" ] || { echo "usage: make invoke FN=acquire|admin EVENT=events/<fn>/<event>.json" >&2; exit 2; }
	@[ -n "$$AWS_ENDPOINT_URL_DYNAMODB" ] || scripts/ddb-local.sh install
	@DDB_PORT=$(DDB_PORT) TABLE_NAME=$(TABLE_NAME) LOG_LEVEL=$(LOG_LEVEL) $(DEVSTACK) invoke -fn $(FN) $(EVENT)

rie: $(RIE)

$(RIE):
	@mkdir -p $(dir $@)
	GOBIN=$(CURDIR)/.local/bin $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

# Each benchmark gets a fresh DynamoDB Local: it slows down as a long run fills it.
bench-http: rie
	@for bench in Latency Throughput; do \
	  scripts/ddb-local.sh stop $(BENCH_DDB_PORT); scripts/ddb-local.sh start $(BENCH_DDB_PORT) || exit 1; \
	  run=$$([ $$bench = Latency ] && echo '^TestBootstrapsUnderEmulator$$' || echo '^$$'); \
	  ZL_DYNAMODB_ENDPOINT=http://127.0.0.1:$(BENCH_DDB_PORT) ZL_RIE=$(CURDIR)/$(RIE) \
	    $(GO) test -count=1 -run "$$run" -bench "^BenchmarkAcquire$$bench$$" -benchtime $(HTTP_BENCHTIME) -v ./integration/ \
	    | grep -v '^[0-9][0-9] [A-Z][a-z][a-z] \|RequestId\|failed to get the next invoke'; \
	  status=$${PIPESTATUS[0]}; scripts/ddb-local.sh stop $(BENCH_DDB_PORT); [ $$status = 0 ] || exit $$status; \
	done

fuzz-http:
	$(GO) test -run '^$$' -fuzz FuzzDecodeAcquire -fuzztime $(FUZZTIME) ./shared/httpapi
	$(GO) test -run '^$$' -fuzz FuzzDecodeLimits -fuzztime $(FUZZTIME) ./shared/httpapi
	$(GO) test -run '^$$' -fuzz FuzzInvoke -fuzztime $(FUZZTIME) ./shared/httpapi
