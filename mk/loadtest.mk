# mk/loadtest.mk: the load tool of the local stack (cmd/loadtest). Included by the root Makefile.
#
#   make loadtest                                   every scenario, 64 clients, 10 s each, no faults
#   make loadtest LOADTEST_FLAGS='-faults lost=0.05,error=0.02,throttle=0.05,conflict=0.05'
#   make loadtest LOADTEST_FLAGS='-scenarios hot,leases -clients 128 -duration 30s -out docs/reliability.md'
#
# It starts its own DynamoDB Local, fault proxy and stack (bin/devstack) on free ports, prints
# admitted vs the exact bound, lost or double-charged tokens, 5xx, p50/p99 and throughput per
# scenario, and exits 1 when an invariant is broken. See docs/reliability.md.

LOADTEST_FLAGS ?=

.PHONY: loadtest

loadtest: devstack
	@scripts/ddb-local.sh install
	$(GO) run ./cmd/loadtest $(LOADTEST_FLAGS)
