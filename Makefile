# The two commands of the README. Both install what is missing first.
.PHONY: setup demo test wheel clean

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/facetalk demo

test: setup
	.venv/bin/pytest

# The installable wheel, with the built web page inside, into dist/.
wheel: setup
	"$$(command -v uv || echo .venv/bin/uv)" build --wheel --out-dir dist .

clean:
	rm -rf .venv bin build dist .pytest_cache
