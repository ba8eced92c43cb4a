.PHONY: setup demo test test-fast snapshots lint bench bench-batch bench-serve clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/lambda-features demo

# two workers, a test file each at a time (a file's tests share its services and fixtures);
# many tests wait on a stream job, an outage or an alert, so the 2 cores are used better
test: setup
	.venv/bin/pytest -q -n 2 --dist loadfile

test-fast: setup
	.venv/bin/pytest -q -m "not slow"

snapshots: setup
	UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/test_snapshots.py

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
