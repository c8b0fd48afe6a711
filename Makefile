# The platform's commands. Each target calls a script in deploy/ (see docs/operations.md).
.DEFAULT_GOAL := help
.PHONY: help run test bench lint fmt tools helm-check services-start services-stop clean-local

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'

run: ## start Postgres and Redis, migrate, load demo data, serve every service (Ctrl-C stops)
	@bash deploy/run.sh

test: ## helm-check, then private Postgres and Redis, every test, stop them
	@bash deploy/test.sh

helm-check: ## hadolint the Dockerfile; lint, render and validate the Helm chart
	@bash deploy/helm-check.sh

bench: ## run the benchmarks and write BENCHMARKS.md
	@bash deploy/bench.sh

lint: ## cargo fmt --check, clippy with warnings as errors, buf lint, API documents in step
	@bash deploy/lint.sh

fmt: ## format the Rust code
	cargo fmt --all

tools: ## install the local command-line tools (buf; helm, hadolint, kubernetes-validate) under .tools/
	@bash deploy/tools.sh helm

services-start: ## start the development Postgres and Redis only
	@bash deploy/local/services.sh start run

services-stop: ## stop the development Postgres and Redis
	@bash deploy/local/services.sh stop run

clean-local: ## stop and delete the local Postgres and Redis data
	@bash deploy/local/services.sh stop run; bash deploy/local/services.sh stop test; rm -rf target/local
