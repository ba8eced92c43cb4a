# two pytest-xdist workers, a test file each: most tests wait on JVMs and servers part of the time
TEST_WORKERS ?= 2

.PHONY: setup demo test test-fast snapshots lint bench bench-batch bench-serve clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/lambda-features demo

test: setup
	cd jvm && mvn -o -q -B -Dmaven.repo.local=../.cache/m2 test
	.venv/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	.venv/bin/pytest -q tests/unit

snapshots: setup
	UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/unit/test_snapshots.py

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/python bench/stream_bench.py

bench-batch: setup
	.venv/bin/python bench/batch_bench.py

bench-serve: setup
	.venv/bin/python bench/serve_bench.py

clean:
	-.venv/bin/lambda-features services stop
	rm -rf .lambda-features
