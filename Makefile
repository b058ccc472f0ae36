# The two commands the README promises: `make demo` and `make test`.
CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: build release test lint doc-citations unit-and-integration package-test fuzz demo bench bench-check clean setup-demo setup-test

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Everything CI runs (as root: the integration tests create users, PAM
# services and a throwaway sshd on loopback, and clean up after themselves).
# The set-up comes first: it installs what the tests need, or says in one
# line what is missing.
test: setup-test lint doc-citations unit-and-integration package-test fuzz bench-check

# The Debian packages and tools of scripts/packages/{demo,test}, installed
# with apt-get (and cargo install) when missing; a quick no-op when all are
# there.
setup-demo:
	@CARGO="$(CARGO)" scripts/setup demo

setup-test:
	@CARGO="$(CARGO)" scripts/setup test

# The seam check too: otp-enroll/src names no concrete store type and
# makes no call into safe_fs or pq (otp-enroll/tests/seam.rs; issue 28).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test -q -p otp-enroll --test seam

# README.md, SECURITY.md, ARCHITECTURE.md and doc/**/*.md cite tests by
# name as proof: a citation of a test (or file) that no longer exists fails
# here, and so does a document named anywhere in the tree (.md, .rs, .toml)
# that does not exist. The self-test first, so that the check cannot
# quietly stop finding anything.
doc-citations:
	@CARGO="$(CARGO)" scripts/check-doc-citations --self-test
	@CARGO="$(CARGO)" scripts/check-doc-citations

# The build comes first: the tests load the module, a cdylib, which
# `cargo test` alone does not build (testkit::module_path). The tests that
# need root (or a test package, or the built module) are marked #[ignore]
# with that reason, so that `cargo test --workspace` as any user runs the
# rest and lists them; here, as root, --include-ignored runs them all.
unit-and-integration:
	$(CARGO) build --workspace
	$(CARGO) test --workspace -- --include-ignored

# Build the .deb, install, log in through it, remove and purge.
package-test:
	scripts/test-deb

# Each fuzz target for FUZZ_SECONDS on its committed corpus.
fuzz:
	scripts/fuzz $(FUZZ_SECONDS)

# Cost per login next to google-authenticator-libpam and pam_oath, and how it
# scales with users and rules (bench/login-cost --help); what otp-enroll
# report costs over 10 000 accounts (bench/report-cost --help); the fleet
# database, and whether its wrong codes tell who is enrolled or exists;
# what a flood of wrong passwords costs a VPN login through the
# FreeRADIUS recipe (bench/radius-flood).
bench:
	bench/login-cost
	bench/report-cost
	$(CARGO) build --release --workspace
	$(CARGO) bench -p testkit --bench fleet
	$(CARGO) bench -p testkit --bench fleet_oracle
	CARGO="$(CARGO)" bench/radius-flood

# The same benchmark, short: proves it still runs and every login in it
# succeeds (the figures of a quick run are not for quoting).
bench-check:
	bench/login-cost --quick >/dev/null
	bench/report-cost --quick >/dev/null

# Build, enroll the user pamotp-demo, and run a throwaway sshd on 127.0.0.1
# that asks for its codes; Ctrl-C removes everything (needs root).
demo: setup-demo
	CARGO="$(CARGO)" ./scripts/demo

clean:
	$(CARGO) clean
