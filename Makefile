# Phoenix: `make demo` runs the DR failover end to end on a local sandbox of real services;
# `make test` runs every test; `make drill` runs `phoenix drill runbooks/dr-failover.yaml` on the
# sandbox and checks production was left byte for byte unchanged.
# Both install what they need first (scripts/install-deps.sh: Debian packages, Rust crates).

CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: all deps build release demo drill test lint unit fuzz bench schema clean-state

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release

demo: release
	PHOENIX=target/release/phoenix scripts/demo.sh

drill: release
	PHOENIX=target/release/phoenix scripts/drill.sh

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: deps
	$(CARGO) test --workspace --all-targets

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# The whole suite, as CI runs it: lint, unit and integration tests (the crash test
# included), then the loader fuzzed for a bounded time.
test: lint unit fuzz

schema: build
	$(CARGO) run -q -- schema > schemas/runbook.schema.json

bench: release
	bench/executor.sh
