# Two commands matter: `make run` starts the server (with a private PostgreSQL
# when DATABASE_URL is unset) and `make test` runs every test.
#
# `make run` and `make conformance` read the server's own environment variables
# (`bin/refreshd -h` lists them): REFRESHD_ADDR=127.0.0.1:9012 make run, then
# REFRESHD_ADDR=127.0.0.1:9012 make conformance, reach the same server.

GO  ?= go
NPM ?= npm
BIN := bin
REFRESHD_ADDR     ?= 127.0.0.1:9011
REFRESHD_DATA_DIR ?= ./.data
export REFRESHD_ADDR REFRESHD_DATA_DIR

# Node tools, installed by npm from the committed lock files into git-ignored
# node_modules folders; each is installed again only when its lock file changes.
TOOLS_STAMP  := tools/node_modules/.installed
CLIENT_DIR   := clients/typescript
CLIENT_STAMP := $(CLIENT_DIR)/node_modules/.installed
REDOCLY      := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true tools/node_modules/.bin/redocly
# The Redoc bundle /docs serves, fetched with npm at the version and checksum in
# impl/apidocs/redoc.version, and embedded by the build.
REDOC_BUNDLE := impl/apidocs/redoc.standalone.js

.PHONY: all build run test go-test vet lint generate check-generated conformance bench bench-quick fuzz clean chromium node-deps

all: build

build: $(REDOC_BUNDLE)
	$(GO) build -buildvcs=auto -o $(BIN)/refreshd ./cmd/refreshd
	@if [ -d cmd/conformance ]; then $(GO) build -buildvcs=auto -o $(BIN)/conformance ./cmd/conformance; fi

# A development key is kept in the data dir so that `make run` prints the same
# key every time; set REFRESHD_API_KEY to use your own.
run: build
	@mkdir -p $(REFRESHD_DATA_DIR)
	@if [ -z "$$REFRESHD_API_KEY" ] && [ ! -s $(REFRESHD_DATA_DIR)/dev-api-key ]; then \
		head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > $(REFRESHD_DATA_DIR)/dev-api-key; fi
	@KEY=$${REFRESHD_API_KEY:-$$(cat $(REFRESHD_DATA_DIR)/dev-api-key)}; \
		echo "refreshd: http://$(REFRESHD_ADDR)  API key: $$KEY"; \
		REFRESHD_API_KEY=$$KEY exec $(BIN)/refreshd

# Runs the conformance suite against the server that `make run` started; the key
# goes by the environment, so it never shows in ps.
conformance: build
	@KEY=$${REFRESHD_API_KEY:-$$(cat $(REFRESHD_DATA_DIR)/dev-api-key)}; \
		addr=$(REFRESHD_ADDR); case $$addr in :*) addr=127.0.0.1$$addr;; 0.0.0.0:*) addr=127.0.0.1:$${addr#0.0.0.0:};; esac; \
		CONFORMANCE_API_KEY=$$KEY exec $(BIN)/conformance -url http://$$addr -profile strict

generate: $(CLIENT_STAMP)
	$(GO) tool oapi-codegen -config oapi-codegen.yaml openapi.yaml
	cd $(CLIENT_DIR) && node_modules/.bin/openapi-typescript ../../openapi.yaml -o schema.d.ts > /dev/null

# Fails when generated/ or the TypeScript client's schema.d.ts is not exactly
# what openapi.yaml generates today, stray files included.
check-generated: $(CLIENT_STAMP)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	sed 's|^output: .*|output: '"$$tmp"'/api.gen.go|' oapi-codegen.yaml > $$tmp/config.yaml && \
	$(GO) tool oapi-codegen -config $$tmp/config.yaml openapi.yaml && rm $$tmp/config.yaml && \
	diff -r generated $$tmp > /dev/null || { \
		echo "generated/ is stale or edited by hand: run 'make generate' and commit the result"; \
		diff -r generated $$tmp | head -20; exit 1; }; \
	(cd $(CLIENT_DIR) && node_modules/.bin/openapi-typescript ../../openapi.yaml -o $$tmp/schema.d.ts > /dev/null) && \
	diff $(CLIENT_DIR)/schema.d.ts $$tmp/schema.d.ts > /dev/null || { \
		echo "$(CLIENT_DIR)/schema.d.ts is stale or edited by hand: run 'make generate' and commit the result"; \
		diff $(CLIENT_DIR)/schema.d.ts $$tmp/schema.d.ts | head -20; exit 1; }

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The contract against an independent validator and the rule set in redocly.yaml.
# It first lints a copy with a stray property planted in `info` (the kind of slip
# a misplaced comma in a flow mapping makes), to show the gate can close.
lint: $(TOOLS_STAMP)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	sed 's/^info:$$/info:\n  straying: planted by make lint/' openapi.yaml > $$tmp/openapi.yaml; \
	if cmp -s openapi.yaml $$tmp/openapi.yaml; then echo "lint self-check: could not plant the defect"; exit 1; fi; \
	if $(REDOCLY) lint --config redocly.yaml $$tmp/openapi.yaml > $$tmp/out 2>&1; then \
		echo "lint self-check: redocly passed a contract with a planted defect"; exit 1; fi
	$(REDOCLY) lint --config redocly.yaml --format stylish openapi.yaml

test: check-generated vet lint $(REDOC_BUNDLE) node-deps chromium
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

node-deps: $(TOOLS_STAMP) $(CLIENT_STAMP)

$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	cd tools && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENT_STAMP): $(CLIENT_DIR)/package.json $(CLIENT_DIR)/package-lock.json
	cd $(CLIENT_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(REDOC_BUNDLE): impl/apidocs/redoc.version
	@set -e; version=$$(awk '$$1 == "version" {print $$2}' $<); sum=$$(awk '$$1 == "sha256" {print $$2}' $<); \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	(cd $$tmp && $(NPM) pack --silent redoc@$$version > /dev/null && tar xzf redoc-$$version.tgz package/bundles/redoc.standalone.js package/LICENSE); \
	echo "$$sum  $$tmp/package/bundles/redoc.standalone.js" | sha256sum -c --quiet -; \
	cp $$tmp/package/LICENSE impl/apidocs/redoc.LICENSE; \
	cp $$tmp/package/bundles/redoc.standalone.js $@; \
	echo "fetched Redoc $$version for /docs"

# The docs page test opens /docs in headless Chromium; Debian's package provides
# it. Where it cannot be installed the test says so and skips.
chromium:
	@command -v chromium > /dev/null || command -v chromium-browser > /dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null 2>&1 || \
		  { apt-get update -qq > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null 2>&1; }; } && \
		echo "installed chromium"; } || echo "chromium is not installed and could not be; the /docs browser test will skip"

# The server against the SQL it runs and against the minimal SQL of the same
# effect, side by side in one run: a table on stdout and bench-results.json.
# bench-quick uses smaller data (about 3 minutes).
bench:
	$(GO) run ./cmd/bench

bench-quick:
	$(GO) run ./cmd/bench -quick

clean:
	rm -rf $(BIN) tools/node_modules $(CLIENT_DIR)/node_modules $(REDOC_BUNDLE) impl/apidocs/redoc.LICENSE
