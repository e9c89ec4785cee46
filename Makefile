# `make demo` and `make test` build .venv on first use; nothing else needs to be installed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?=
PYTEST_ARGS ?=

.PHONY: demo test venv clean hdfs-up hdfs-down cluster-up cluster-down package

venv: $(STAMP)

$(STAMP): requirements.txt requirements-bigdl.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-bigdl.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jobs.demo $(if $(OUT),--out $(OUT))

test: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

# A development HDFS (NameNode + DataNode, Hadoop 3.3.4 jars from Maven Central) on loopback.
hdfs-up: $(STAMP)
	infra/hdfs.sh up

hdfs-down:
	infra/hdfs.sh down

# A standalone Spark cluster on loopback: a master and two one-core workers.
cluster-up: $(STAMP)
	infra/cluster.sh up

cluster-down:
	infra/cluster.sh down

# What a cluster needs: the wheel, the --py-files archive, the configuration and a packed venv for --archives.
package: $(STAMP)
	rm -rf dist build && mkdir -p dist
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w dist .
	$(BIN)/python -m zipfile -c dist/pipelines.zip pipelines jobs
	cd conf && ../$(BIN)/python -m zipfile -c ../dist/conf.zip base ci local spark log4j2.properties
	# venv-pack refuses editable installs, so the packed environment gets the wheel in a venv of its own.
	$(PYTHON) -m venv dist/venv
	dist/venv/bin/pip install --quiet -r requirements.txt
	dist/venv/bin/pip install --quiet --no-deps -r requirements-bigdl.txt dist/pipelines-*.whl
	$(BIN)/pip install --quiet venv-pack==0.2.0
	$(BIN)/venv-pack -p dist/venv -o dist/pipelines-venv.tar.gz
	rm -rf dist/venv build

clean:
	rm -rf $(VENV) runs .pytest_cache dist
