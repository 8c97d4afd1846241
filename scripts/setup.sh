#!/usr/bin/env bash
# Sets up everything Tabellion needs on a fresh machine: Debian packages, a virtualenv, the project.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=$(grep -v '^#' scripts/apt-packages.txt | xargs || true)
missing=""
for p in $apt_packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing tabellion and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,tpm]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The TypeScript agent SDK's compiler (sdk/typescript, a pinned devDependency from the npm registry); its tests
# run under pytest (tests/e2e/test_typescript_sdk.py) against a real gateway.
npm_stamp=sdk/typescript/node_modules/.installed-$(sha256sum sdk/typescript/package-lock.json | cut -c1-16)
if [ ! -f "$npm_stamp" ]; then
  echo "setup: installing the TypeScript SDK's build tools (npm ci)"
  (cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$npm_stamp"
fi
