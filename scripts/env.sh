# Sourced by the other scripts: one place for paths and pinned versions.
# shellcheck shell=bash
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

# Build cache outside the clone, so that fresh clones build incrementally.
# (Not a CORRAL_* variable: those are Corral's settings, and unknown ones stop it.)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/corral/target}
# Tools installed from a registry's prebuilt packages (sqlx-cli from PyPI)
# are linked here.
TOOLS_BIN=$HOME/.cache/corral/bin
export PATH="$TOOLS_BIN:$HOME/.cargo/bin:$PATH"
# The test Kubernetes control plane (scripts/k8s/build), built once.
export K8S_HOME=${K8S_HOME:-$HOME/.cache/corral/k8s}
# Builds use the committed .sqlx/ query metadata; no database is needed to compile.
export SQLX_OFFLINE=true

# Pinned tools. cargo-leptos 0.3.11 needs rustc >= 1.96; 0.3.10 is the same code.
CARGO_LEPTOS_VERSION=0.3.10
SQLX_CLI_VERSION=0.8.6
# scripts/schemathesis, in a venv outside the clone.
SCHEMATHESIS_VERSION=4.32.5
# The Postgres every test and local run talks to unless told otherwise.
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# Installs the Debian packages of those named that are missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A freshly created, empty database on the machine's Postgres: name -> its URL.
fresh_db() {
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\"" >/dev/null
  echo "${PG_ADMIN_URL%/*}/$1"
}
