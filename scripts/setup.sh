#!/usr/bin/env bash
# Build everything the platform needs on a fresh machine; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

mariadbd=$(command -v mariadbd || command -v /usr/sbin/mariadbd || true)
if ! command -v redis-server >/dev/null || ! command -v java >/dev/null || ! command -v prometheus >/dev/null \
    || [ -z "$mariadbd" ]; then
  if [ "$(id -u)" = 0 ]; then
    # Debian's prometheus brings promtool too; its own service and MariaDB's are not started here
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      redis-server openjdk-17-jre-headless prometheus mariadb-server >/dev/null
  else
    echo "missing redis-server, java, prometheus or mariadb-server: run" \
      "'sudo apt-get install redis-server openjdk-17-jre-headless prometheus mariadb-server'" >&2
    exit 1
  fi
fi
if ! command -v wrk >/dev/null; then  # the load generator of `make bench-serve`
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "note: wrk is missing, which only 'make bench-serve' needs: 'sudo apt-get install wrk'" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum constraints.txt pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
  touch "$stamp"
fi

# The JVM parts (jvm/pom.xml): our own Java, built and tested, as .cache/jars/flink/lambda-features-jvm.jar,
# and the pinned artifacts from Maven Central in .cache/jars/<group>/ (flink: the Flink Kafka
# connector; kafka: the embedded broker; agent: the JMX exporter). Maven runs only when jvm/
# changed, and offline once .cache/m2 holds what this pom needs.
if ! command -v mvn >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven >/dev/null
  else
    echo "missing mvn (Maven): run 'sudo apt-get install maven'" >&2
    exit 1
  fi
fi
jar_stamp=.cache/jars/.built-$(find jvm -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-12)
m2_stamp=.cache/m2/.complete-$(sha1sum jvm/pom.xml | cut -c1-12)
if [ ! -f "$jar_stamp" ]; then
  offline=
  [ -f "$m2_stamp" ] && offline=-o
  rm -rf .cache/jars
  (cd jvm && mvn -q -B $offline -Dmaven.repo.local=../.cache/m2 package \
    dependency:copy-dependencies@flink dependency:copy-dependencies@kafka dependency:copy-dependencies@agent)
  touch "$m2_stamp" "$jar_stamp"
fi
