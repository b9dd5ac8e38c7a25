# The two commands a newcomer needs; see README.md.
.PHONY: demo test up down fmt

## demo: install what is missing, start the local control plane and the operator, apply an example zone
demo:
	e2e/setup.sh
	e2e/cluster.sh demo

## test: formatting, clippy, unit tests and end-to-end tests (starts and stops the cluster)
test:
	e2e/test.sh

up:
	e2e/cluster.sh up

down:
	e2e/cluster.sh down

fmt:
	cargo fmt --all
bench-compare: ; bench/compare/setup.sh && bench/compare/run.sh $(BENCH_ARGS)
