# `make demo` and `make test` build .venv on first use; nothing else needs to be installed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?=
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-yarn lint venv shell clean hdfs-up hdfs-down yarn-up yarn-down cluster-up cluster-down package bench-deps

venv: $(STAMP)

# infra/install.sh is the one installation (docker/Dockerfile runs it too); these are the files it reads (`--inputs`:
# the requirements, setup.py and jvm/'s pom and sources, from which it builds pipelines/jars/pipelines-jvm.jar).
$(STAMP): infra/install.sh $(shell infra/install.sh --inputs)
	PYTHON=$(PYTHON) infra/install.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jobs.demo $(if $(OUT),--out $(OUT))

# Every test; the HDFS, standalone cluster and YARN tests start their daemons when they are not running (.ci/run
# starts them first) and the YARN tests run `make package` when dist/ is older than the project.
test: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

# The jobs on the development YARN alone (tests/integration/test_yarn.py, part of make test).
test-yarn: $(STAMP)
	$(BIN)/python -m pytest tests -m yarn $(PYTEST_ARGS)

# The unit tests and the quick integration tests (no `slow` marker): a few minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" $(PYTEST_ARGS)

# ruff's lint and format check (ruff.toml), the import contracts (.importlinter) and mypy on pipelines/ (mypy.ini); CI runs it
# before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy pipelines

# The pyspark shell with BigDL's jars and the project importable (infra/shell.sh; SHELL_ARGS go to pyspark).
shell: $(STAMP)
	infra/shell.sh $(SHELL_ARGS)

# What bench/ needs beyond the project (torch for the training benchmarks); not part of `make venv`.
bench-deps: $(STAMP)
	$(BIN)/pip install --quiet -r requirements-bench.txt

# A development HDFS (NameNode + DataNode, Hadoop 3.3.4 jars from Maven Central) on loopback.
hdfs-up: $(STAMP)
	infra/hdfs.sh up

hdfs-down:
	infra/hdfs.sh down

# A development YARN (ResourceManager + NodeManager, the same Hadoop jars) on loopback, staging to the development HDFS.
yarn-up: $(STAMP)
	infra/yarn.sh up

yarn-down:
	infra/yarn.sh down

# A standalone Spark cluster on loopback: a master and two one-core workers.
cluster-up: $(STAMP)
	infra/cluster.sh up

cluster-down:
	infra/cluster.sh down

# What a cluster needs: the wheel, the --py-files archive, the configuration and a packed venv for --archives; for YARN,
# the jars of the Spark that pyspark ships (spark.yarn.archive: stored, not compressed, jars at the top).
# PACK: the packed venv's distributions, with those they require. By default what the Oozie workflow's jobs import:
# the project's requirements, BigDL, matplotlib and TensorBoard (the report); PACK=all: all of .venv (TensorFlow and
# OpenVINO too, for the jobs that import them).
PACK ?= pipelines bigdl-dllib-spark3 matplotlib tensorboard
SITE := lib/python3.11/site-packages
package: $(STAMP)
	rm -rf dist build && mkdir -p dist
	# dated as the jars: unchanged on HDFS (-put -p), the same resource for YARN, not localised again
	cd $$($(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars && \
	  zip -q -0 $(CURDIR)/dist/spark-jars.zip *.jar && touch -r . $(CURDIR)/dist/spark-jars.zip
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w dist .
	$(BIN)/python -m zipfile -c dist/pipelines.zip pipelines jobs
	cd conf && ../$(BIN)/python -m zipfile -c ../dist/conf.zip base ci local spark log4j2.properties
	# venv-pack refuses editable installs: the packed venv is a venv of its own, with .venv's distributions and the
	# project's wheel; Spark's and BigDL's jars stay out (spark.yarn.archive and --jars ship them).
	$(PYTHON) -m venv --without-pip dist/venv
	$(BIN)/python infra/copy_dists.py dist/venv $(PACK)
	$(BIN)/pip install --quiet --no-deps --target dist/venv/$(SITE) dist/pipelines-*.whl
	$(BIN)/pip install --quiet venv-pack==0.2.0
	$(BIN)/venv-pack -q -p dist/venv -o dist/pipelines-venv.tar.gz --compress-level 1 \
	  --exclude '$(SITE)/pyspark/jars/*' --exclude '$(SITE)/bigdl/share/*/lib/*.jar'
	# readable by all: installed on HDFS with -put -p, a public resource YARN unpacks once for every application
	chmod a+r dist/pipelines-venv.tar.gz
	rm -rf dist/venv build

clean:
	rm -rf $(VENV) runs .pytest_cache dist jvm/target pipelines/jars
