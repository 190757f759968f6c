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

bench:
	@echo "no benchmarks yet (see bench/README.md)"
