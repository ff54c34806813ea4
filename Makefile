# Makefile: aliases for the commands a contributor runs. CI calls `make test`.

GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/kintsugi
# Unit and multi-process tests; must stay well under 15 minutes on 2 cores.
TEST_TIMEOUT ?= 14m
FUZZTIME ?= 20s
# Stamped into the binary (`kintsugi version`) and the image tag.
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
IMAGE    ?= kintsugi
# A tag may hold only [A-Za-z0-9_.-].
IMAGE_TAG ?= $(shell printf '%s' '$(VERSION)' | tr -c 'A-Za-z0-9_.-' '-')
# podman first, else docker.
CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE_CONTEXT ?= bin/image
# Extra flags of the image build. podman keeps an intermediate image per
# step by default, and every build here changes from the version label on,
# so they would only pile up as dangling images.
IMAGE_BUILD_FLAGS ?= $(if $(findstring podman,$(CONTAINER)),--layers=false)
LDFLAGS  := -X main.versionStamp=$(VERSION)

.PHONY: all build run test test-short lint fmt vet tidy-check fuzz bench chaos clean image test-image

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kintsugi

# The container image (deploy/Containerfile): the static binary, built here
# with the host's Go cache and copied in, so the build downloads nothing.
image:
	@test -n "$(CONTAINER)" || { echo "make image: neither podman nor docker found"; exit 1; }
	rm -rf $(IMAGE_CONTEXT)
	mkdir -p $(IMAGE_CONTEXT)/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(IMAGE_CONTEXT)/kintsugi ./cmd/kintsugi
	$(CONTAINER) build $(IMAGE_BUILD_FLAGS) --build-arg VERSION='$(VERSION)' -f deploy/Containerfile \
		-t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest $(IMAGE_CONTEXT)

# Starts the embedded local cluster: a gateway and 6 storage nodes (4+2) in
# one process, data under ./data.
run: build
	./$(BIN) dev --data ./data

# The multi-process suites of ./cmd/kintsugi assert latencies (hedged
# reads, failover) that another package's tests sharing the two cores
# would distort: they run last and alone. The other packages run two at a
# time before them (their builds too). Both runs go to the end; the target
# fails if either did.
E2E_PKG := ./cmd/kintsugi
test:
	$(GO) vet $(PKGS)
	@pkgs=$$($(GO) list $(PKGS)) && e2e=$$($(GO) list $(E2E_PKG)) || exit 1; \
	rest=$$(printf '%s\n' $$pkgs | grep -vx "$$e2e"); status=0; \
	if [ -n "$$rest" ]; then \
		echo "$(GO) test -race -p 2 -timeout $(TEST_TIMEOUT) <every package but $(E2E_PKG)>"; \
		$(GO) test -race -p 2 -timeout $(TEST_TIMEOUT) $$rest || status=1; \
	fi; \
	if printf '%s\n' $$pkgs | grep -qx "$$e2e"; then \
		echo "$(GO) test -race -p 1 -timeout $(TEST_TIMEOUT) $(E2E_PKG)"; \
		$(GO) test -race -p 1 -timeout $(TEST_TIMEOUT) $(E2E_PKG) || status=1; \
	fi; \
	exit $$status
	# Allocation counts mean nothing under -race (sync.Pool drops items at
	# random there): the tests that assert them run once more without it.
	$(GO) test -count=1 -run 'Allocs$$' ./codec

# Builds the image twice and runs a cluster of containers under podman:
# nodes and the gateway replaced by a newer image on the same volumes
# (cmd/kintsugi TestPodmanReplace). Needs root podman, runc and the aws cli;
# kept out of `make test` so that it runs without them. CI runs both.
test-image:
	KINTSUGI_IMAGE_TEST=1 $(GO) test -count=1 -v -run '^TestPodmanReplace$$' -timeout 10m ./cmd/kintsugi

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
#
# It also runs the network-namespace tests (root): storage nodes as hosts
# of their own on a bridge, the Raft leader killed during a drain, and
# TestNetnsChaos, the chaos run with every process on a host of its own,
# the map in Raft, and partitions (a node cut off, a minority of the
# voters, a gateway from half the nodes) among the faults.
chaos:
	KINTSUGI_CHAOS=long $(GO) test -race -v -run '^TestChaos$$' -timeout 60m ./cmd/kintsugi
	KINTSUGI_CHAOS=long $(GO) test -race -v -run '^TestNetnsChaos$$' -timeout 20m ./cmd/kintsugi
	KINTSUGI_CHAOS=long $(GO) test -v -run '^TestNetns(AdminRace|Leader)' -timeout 10m ./cmd/kintsugi

clean:
	rm -rf bin
