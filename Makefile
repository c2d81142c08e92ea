# The order-management system's everyday commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
OMS := $(BIN)/oms
STAMP := $(VENV)/.installed-stamp

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with the project (dev and local extras) and Maven (fetches the Kafka and registry jars)
	@bash ops/install-tools.sh maven

test-tools: setup
	@bash ops/install-tools.sh kcat prometheus chromium docker-compose

up: setup ## Start the local Kafka broker and schema registry (fetched on first use)
	$(OMS) up

down: ## Stop the local schema registry and Kafka broker
	@if [ -x $(OMS) ]; then $(OMS) down; fi

run: up ## Start everything and run every processor on a stream of demo orders (Ctrl-C stops)
	$(OMS) topics apply
	$(OMS) schemas register
	$(OMS) demo

unit: test-tools ## Run the broker-free tests only (no Kafka, no registry)
	$(BIN)/pytest tests/unit

test: test-tools up ## Run the unit and integration tests against the local broker and registry
	$(BIN)/pytest

bench: up ## Measure the platform and save the figures under .bench/
	$(OMS) topics apply
	$(OMS) schemas register
	$(OMS) bench

chaos: up ## Orders through kill -9 of processors, broker and registry, a frozen processor and a full disk; exact reconciliation
	$(OMS) topics apply
	$(OMS) schemas register
	$(OMS) chaos

lock: setup ## Pin the image's dependencies with their hashes (requirements.lock); UPGRADE=1 takes the newest
	$(BIN)/python -m ops.requirements_lock $(if $(UPGRADE),--upgrade)

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: help setup test-tools unit up down run test bench chaos lock lint
