# The README's two quick-start commands: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cartsim-installed

.PHONY: demo test lint bench claims external clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo_out
	$(BIN)/cartsim trial run examples/eliana.toml --patients 2000 --out demo_out
	@echo "report: $(CURDIR)/demo_out/report.html"
	# the model in force (the installed parameter set, docs/calibration.md) on ELIANA's spec,
	# every published ELIANA figure next to its simulated value
	$(BIN)/cartsim validate --studies eliana --patients 200 --rows --no-report \
	  --out demo_out/eliana_vs_published

test: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow" -n 2

# Every claim of the two source reviews as a paired virtual experiment → docs/claims.md
claims: $(STAMP)
	nice $(BIN)/cartsim claims --out claims_out --doc docs/claims.md --examples examples

# The held-out check: trials outside the calibration file (docs/validation.md "External check")
external: $(STAMP)
	$(BIN)/cartsim validate --external --out external_out

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_cohort.py

clean:
	rm -rf $(VENV) demo_out claims_out external_out .pytest_cache .ruff_cache
