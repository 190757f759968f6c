# Thin entry points: each target calls a script or the CLI.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
ENV ?= dev

.PHONY: setup up down test lint unit bench docs

setup:
	scripts/setup.sh

up: setup
	quantbot-infra up $(ENV)

down: setup
	quantbot-infra down $(ENV)

test: setup
	scripts/test.sh

lint: setup
	scripts/lint.sh

unit:
	pytest -q tests/unit

docs:
	scripts/role-docs.py

# side by side in one run: stock Ansible vs the project's settings (bench/README.md);
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--only inventory" or "--first"
bench: setup
	python bench/bench.py $(BENCH_ARGS)
