# The two commands of the README. Both set everything up from nothing (see .ci/bootstrap).
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
DEMO ?= demo

.PHONY: setup demo test lint bench
setup:
	@.ci/bootstrap

demo: setup
	@test -d $(DEMO)/images || .venv/bin/cvpipe sample-data $(DEMO)/images --kind shapes --count 600
	.venv/bin/cvpipe run --images $(DEMO)/images --output $(DEMO)/run

test:
	@CVPIPE_BROWSER=1 .ci/bootstrap
	.venv/bin/ruff check components pipelines tests bench
	.venv/bin/python -m pytest tests

lint: setup
	.venv/bin/ruff check components pipelines tests bench

bench: setup
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/train_input.py
	.venv/bin/python bench/tuning.py
	.venv/bin/python bench/edge.py --kind shapes
	.venv/bin/python bench/edge.py --kind digits
	.venv/bin/python bench/report.py
	.venv/bin/python bench/rerun.py
	.venv/bin/python bench/commands.py
	.venv/bin/python bench/demo.py
	.venv/bin/python bench/train_speed.py
	.venv/bin/python bench/onednn_stress.py
	.venv/bin/python bench/shortcut_speed.py
