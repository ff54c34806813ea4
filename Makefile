# Makefile: aliases for the commands a contributor runs. CI calls `make test`.

GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/kintsugi
# Unit and multi-process tests; must stay well under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 14m
FUZZTIME ?= 20s

.PHONY: all build run test test-short lint fmt vet tidy-check fuzz bench chaos clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kintsugi

# Starts the embedded local cluster: a gateway and 6 storage nodes (4+2) in
# one process, data under ./data.
run: build
	./$(BIN) dev --data ./data

# Packages run one at a time (-p 1): the multi-process suites assert
# latencies (hedged reads, failover) that a second package's tests sharing
# the two cores would distort. It costs about two minutes.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -p 1 -timeout $(TEST_TIMEOUT) $(PKGS)

test-short:
	$(GO) test -short -timeout 5m $(PKGS)

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

tidy-check:
	$(GO) mod tidy -diff

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./codec ./placement ./storagenode/... ./bench/...

# The long chaos run: separate processes (8 nodes in 4 zones, 3 gateways
# whose clocks are 10 s apart) under kill -9 and SIGSTOP of nodes and
# gateways, wiped nodes, a full disk, and nodes added, drained and removed
# while a scrubber rebalances; every client operation is recorded and the
# history checked for linearizability (porcupine). `make test` runs a
# two-minute version. Replay a run with KINTSUGI_CHAOS_SEED=<seed printed
# by the run>; KINTSUGI_CHAOS_LOGS=DIR keeps the process logs, the history
# and porcupine's HTML view of it for a failed run.
chaos:
	KINTSUGI_CHAOS=long $(GO) test -race -v -run '^TestChaos$$' -timeout 60m ./cmd/kintsugi

clean:
	rm -rf bin
