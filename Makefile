# Everything sets itself up on first use: the venv, the Python packages, and (as root, with apt)
# Icarus Verilog, GTKWave and liblz4-dev for FST waves.
PY      := .venv/bin/python
STAMP   := .venv/.installed
APT_PKGS := iverilog liblz4-dev

.PHONY: demo test bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing; tests that need them will skip"; fi; \
	else echo "not root or no apt: not installing$(APT_PKGS); tests that need them will skip"; fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/zeroskip matvec --rows 256 --cols 256 --sparsity 0.8 --w-bits 4 --hw default --simulator verilator

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(PY) benchmarks/matvec.py

clean:
	rm -rf build
