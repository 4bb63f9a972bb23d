# Two commands matter: `make run` starts the server (with a private PostgreSQL
# when DATABASE_URL is unset) and `make test` runs every test.

GO       ?= go
ADDR     ?= 127.0.0.1:9011
DATA_DIR ?= ./.data
BIN      := bin

.PHONY: all build run test vet generate check-generated conformance bench bench-quick fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/refreshd ./cmd/refreshd
	@if [ -d cmd/conformance ]; then $(GO) build -o $(BIN)/conformance ./cmd/conformance; fi

# A development key is kept in the data dir so that `make run` prints the same
# key every time; set REFRESHD_API_KEY to use your own.
run: build
	@mkdir -p $(DATA_DIR)
	@if [ -z "$$REFRESHD_API_KEY" ] && [ ! -s $(DATA_DIR)/dev-api-key ]; then \
		head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > $(DATA_DIR)/dev-api-key; fi
	@KEY=$${REFRESHD_API_KEY:-$$(cat $(DATA_DIR)/dev-api-key)}; \
		echo "refreshd: http://$(ADDR)  API key: $$KEY"; \
		REFRESHD_API_KEY=$$KEY REFRESHD_ADDR=$(ADDR) REFRESHD_DATA_DIR=$(DATA_DIR) exec $(BIN)/refreshd

generate:
	$(GO) tool oapi-codegen -config oapi-codegen.yaml openapi.yaml

# Fails when generated/ is not exactly what openapi.yaml generates today,
# stray files included.
check-generated:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	sed 's|^output: .*|output: '"$$tmp"'/api.gen.go|' oapi-codegen.yaml > $$tmp/config.yaml && \
	$(GO) tool oapi-codegen -config $$tmp/config.yaml openapi.yaml && rm $$tmp/config.yaml && \
	diff -r generated $$tmp > /dev/null || { \
		echo "generated/ is stale or edited by hand: run 'make generate' and commit the result"; \
		diff -r generated $$tmp | head -20; exit 1; }

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...

test: check-generated vet
	$(GO) test -count=1 -timeout 20m ./...

# `make test` replays the fuzz targets' seed corpora (testdata/fuzz); this runs
# each target for FUZZTIME, e.g. `make fuzz FUZZTIME=10m`. New failing inputs
# land in testdata/fuzz: commit them with the fix.
FUZZTIME ?= 1m
FUZZ_TARGETS := impl:FuzzRequest impl:FuzzNumberBound impl/store:FuzzStoreWrites
fuzz:
	@for t in $(FUZZ_TARGETS); do dir=$${t%%:*}; name=$${t##*:}; \
		echo "== $$dir $$name ($(FUZZTIME))"; \
		(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x) || exit 1; done

# Runs the conformance suite against the server that `make run` started.
conformance: build
	@KEY=$${REFRESHD_API_KEY:-$$(cat $(DATA_DIR)/dev-api-key)}; \
		$(BIN)/conformance -url http://$(ADDR) -api-key $$KEY -profile strict

# The server against the raw SQL it runs, side by side in one run: a table on
# stdout and bench-results.json. bench-quick uses smaller data (under 2 minutes).
bench:
	$(GO) run ./cmd/bench

bench-quick:
	$(GO) run ./cmd/bench -quick

clean:
	rm -rf $(BIN)
