# mce: build, test, demo, benchmark. `make help` lists the targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.Version=$(VERSION)
BIN     := bin/mce
# urfave_cli_no_docs leaves out the CLI's Markdown and man page writers,
# whose Markdown package's initialisation took about 1 ms of every mce
# process's start (a run starts one per cluster); features binaries are
# built with the same tags (internal/fbuild.BuildTags).
TAGS    ?= urfave_cli_no_docs
DEMO    ?= demo
# Packages whose concurrency runs under the race detector in `make test`
# (with -short: the end-to-end tests of the built binary run once, without
# it; their RAM-limit checks time a loaded machine's clusters): those that
# start goroutines, or hand work to internal/ordered's (engine/output's
# sorted merge); engine/report and engine/feature start none.
RACE_PKGS ?= ./engine ./engine/inram ./engine/filejob ./engine/output ./reduce ./internal/csvread/... ./internal/gen ./internal/hugemem/... ./internal/ordered/... ./internal/prefork/... ./store/... ./partition/...
FUZZTIME ?= 30s
# Packages whose fuzz targets `make fuzz` runs (all); `make test` runs the
# value and CSV parsers' for 1500 executions each. The store's, Parquet's
# and the report's run their seeds in every `go test` and fuzz under `make
# fuzz`: each of those packages' instrumented build costs a minute or more
# on 2 cores (pebble, parquet-go, chromedp), which `make test` does not
# spend.
FUZZ_PKGS ?= ./...
FUZZ_SHORT_PKGS ?= ./engine/feature ./internal/csvread

.PHONY: help build test test-beam test-race test-short fuzz fuzz-short bench demo lint faults soak clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/mce with its own source embedded (for --features)
	$(GO) generate ./internal/srctree
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mce

test: build ## the test suite CI runs: vet, unit and end-to-end tests, race detector, short fuzzing of the parsers
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	$(GO) test -count=1 -race -short -timeout 10m $(RACE_PKGS)
	$(MAKE) fuzz-short
	$(MAKE) test-beam

# test-beam tests the Beam pipeline (engine/beam, a module of its own, so
# that mce does not depend on Apache Beam): mce beam against mce run on
# generated messy data. The first run compiles the Beam SDK (minutes).
test-beam: ## the Beam pipeline's tests, in its own module (mce beam vs mce run on Prism)
	cd engine/beam && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

test-short: ## quick tests only
	$(GO) test -short ./...

# fuzz-short counts executions instead of seconds: a duration-based -fuzztime
# races the Go fuzz coordinator's own deadline (go.dev/issue/75804, fixed in
# Go 1.27) and can fail with "context deadline exceeded" and no failing input.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=1500x FUZZ_PKGS="$(FUZZ_SHORT_PKGS)"

# -short: fuzzing runs no test, so a package's TestMain builds no binaries
# for its end-to-end tests (engine/report's would build mce first).
fuzz: ## run every fuzz target (of FUZZ_PKGS) for FUZZTIME each (default 30s; "5000x" counts executions)
	@set -e; for pkg in $$($(GO) list $(FUZZ_PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    log=$$(mktemp); \
	    if ! $(GO) test -short -run=NONE -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$pkg >$$log 2>&1; then \
	      new=$$(git status --porcelain --untracked-files=all -- $$dir/testdata/fuzz/$$t 2>/dev/null); \
	      if [ -z "$$new" ] && grep -q '^    context deadline exceeded$$' $$log; then \
	        echo "  ignored: the fuzz coordinator's deadline race (go.dev/issue/75804); no failing input was written"; \
	      else \
	        echo "FAIL: fuzz $$pkg $$t"; tail -n 60 $$log; echo "$$new"; rm -f $$log; exit 1; \
	      fi; \
	    fi; \
	    rm -f $$log; \
	  done; \
	done

BENCHFLAGS ?=
# The large size skips the sort|awk baseline (minutes at 2 GB, and no target
# depends on it); its report goes to bench/results/2GB.
BENCH_LARGE ?= 2GB
# Each size waits up to BENCH_SETTLE for the 1-minute load average to fall
# under half the cores (the large size otherwise starts at the load the
# default size's runs left, and its report is marked indicative for it).
BENCH_SETTLE ?= 3m
# After the measured runs, each size profiles 3 more runs of mce run,
# partition and reduce (and of run and reduce with the Reduce-form f.go)
# and reports their CPU by phase, beside the previous report's (--profile).
bench: build ## micro-benchmarks, then run/partition/reduce vs sort|awk, DuckDB and the floor, at 1 and 2 CPUs, at the default size and at BENCH_LARGE (BENCH_LARGE= for the default size only)
	$(GO) test -run=NONE -bench='Scan$$|Gen$$' -benchmem ./internal/csvread ./internal/gen
	$(BIN) bench --sweep --profile --settle $(BENCH_SETTLE) $(BENCHFLAGS)
	$(if $(BENCH_LARGE),$(BIN) bench --sweep --profile --settle $(BENCH_SETTLE) --size $(BENCH_LARGE) --skip unix --out bench/results/$(BENCH_LARGE) $(BENCHFLAGS))

demo: build ## generate demo invoice files and run mce on them
	@rm -rf $(DEMO)/data
	$(BIN) gen --out $(DEMO)/data --seed 1 --files 6 --size 60MB --messy
	$(BIN) run --out $(DEMO)/out --job demo $(DEMO)/data
	@run=$$(ls -d $(DEMO)/out/demo* | sort -V | tail -1); \
	  echo; echo "outputs: $$run"; ls $$run; \
	  echo; echo "first users of $$(ls $$run/*.features.csv | head -1):"; \
	  head -4 $$(ls $$run/*.features.csv | head -1) | cut -c1-160; \
	  echo; echo "report (open it in a browser): $$run/report.html"

# staticcheck at a pinned version, installed into bin/ on first use.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := bin/staticcheck-$(STATICCHECK_VERSION)

$(STATICCHECK):
	@mkdir -p bin/.staticcheck
	GOBIN=$(CURDIR)/bin/.staticcheck $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/.staticcheck/staticcheck $@

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck (installed at a pinned version)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

faults: build ## the full fault suite (kills, crashes, RAM limit, disk full, bad input); prints its table
	@mkdir -p bin
	@$(GO) test -count=1 -timeout 15m ./internal/faults/ -faults.full -faults.table=$(CURDIR)/bin/faults-table.md; \
	  status=$$?; cat bin/faults-table.md 2>/dev/null; exit $$status

SOAK_SIZE ?= 20GB
soak: build ## a long run (not in CI): SOAK_SIZE (default 20GB) through run, partition and reduce, checked; prints the figures
	SOAK_SIZE=$(SOAK_SIZE) bash internal/faults/soak.sh

clean:
	rm -rf bin $(DEMO)
