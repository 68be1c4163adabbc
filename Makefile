# The two commands of the README. Both install what is missing first.
.PHONY: setup demo test clean

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/facetalk demo

test: setup
	.venv/bin/pytest

clean:
	rm -rf .venv bin .pytest_cache
