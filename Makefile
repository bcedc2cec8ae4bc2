# Two commands on a fresh Debian 12 (as root): `make demo` and `make test`. Both build .venv first.
VENV := .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test bench plugin clean

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml scripts/setup-venv.sh
	./scripts/setup-venv.sh

demo: $(VENV)/.installed
	$(VENV)/bin/loc2vec demo --out out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/tiles.py
	$(PY) benchmarks/rasterize.py
	$(PY) benchmarks/embed.py

plugin:
	python3 scripts/build_plugin.py

clean:
	rm -rf out dist zip_build .pytest_cache
