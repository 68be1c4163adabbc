# The two commands of the README. Both install what is missing first.
.PHONY: setup demo test wheel clean

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/facetalk demo

test: setup
	.venv/bin/pytest

# The sdist and, built from it, the installable wheel (web page inside) into dist/.
wheel: setup
	"$$(command -v uv || echo .venv/bin/uv)" build --out-dir dist .

clean:
	rm -rf .venv bin build dist .pytest_cache
