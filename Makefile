# The two commands the README promises: `make demo` and `make test`.
CARGO ?= cargo

.PHONY: build release test lint demo clean

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Everything CI runs: formatting, lints, unit and integration tests
# (integration tests need root: they create users and PAM services).
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

clean:
	$(CARGO) clean
