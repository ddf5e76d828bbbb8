#!/usr/bin/env bash
# Build the PIDS images without a container registry (`make images`):
#   pids-worker:$PIDS_VERSION    worker/Dockerfile
#   pids-operator:$PIDS_VERSION  operator/Dockerfile
#   pids-redis:$PIDS_VERSION     e2e/images/redis/Dockerfile
#   pids-example-wordcount:$PIDS_VERSION  examples/app/Dockerfile: FROM pids-worker, plus the
#                                example app's wheel (built here like the pids wheel)
# Their FROM images are local `docker import`s of debootstrapped bookworm
# (e2e/base-images.sh). Python packages come only from a wheelhouse built here
# on the host with `pip wheel` (PyPI is reachable from the host; the image
# builds themselves download nothing).
#
# Wheelhouse: $PIDS_E2E_CACHE/wheelhouse-<hash of pyproject.toml and the lock>/
# holds the dependency wheels at the versions of requirements/lock.txt (reused
# while neither changes); the pids wheel itself is rebuilt from the working tree
# every run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_lock images "$@"

PYTHON="${PIDS_E2E_PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "wheels must be cp311 like Debian bookworm python3"' ||
  die "need a Python 3.11 on the host to build the wheelhouse (set PIDS_E2E_PYTHON)"

"$E2E_DIR/docker-up.sh"
"$E2E_DIR/base-images.sh" python redis

LOCK="$REPO_ROOT/requirements/lock.txt"
hash="$(cat "$REPO_ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -c1-12)"
WH="$PIDS_E2E_CACHE/wheelhouse-$PIDS_VERSION-$hash"
CTX="$PIDS_E2E_CACHE/image-context"
rm -rf "$CTX"; mkdir -p "$CTX/wheels" "$WH"

t0=$SECONDS
# The pids wheel, from the working tree (built in a scratch copy so the repo
# stays clean of build/ and *.egg-info droppings).
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/worker" "$src/operator"
cp "$REPO_ROOT/pyproject.toml" "$src/"
for f in README.md README.rst LICENSE; do [[ -e $REPO_ROOT/$f ]] && cp "$REPO_ROOT/$f" "$src/"; done
cp -r "$REPO_ROOT/worker/pids" "$src/worker/"
cp -r "$REPO_ROOT/operator/pids_operator" "$src/operator/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
# pyproject may name a README that does not exist yet; the wheel does not need it
if readme="$(sed -n 's/^readme *= *"\(.*\)"/\1/p' "$src/pyproject.toml")" && [[ -n $readme && ! -e $src/$readme ]]; then
  echo "PIDS" >"$src/$readme"
fi
log "pip wheel pids (+ deps into $WH)"
# fixed timestamps: same sources -> same wheel -> docker layer cache hit -> same
# image ID -> `kind load` skips it
SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$CTX/wheels" "$src" >&2
if [[ ! -f $WH/.done ]]; then
  "$PYTHON" -m pip wheel --quiet --wheel-dir "$WH" --find-links "$CTX/wheels" -c "$LOCK" "$src[operator]" >&2
  # The host pip evaluated environment markers for the host Python; fill in
  # what the image's python3 (Debian 3.11.2) needs on top (e.g. async-timeout).
  target_env="$(docker run --rm --network none "$PYTHON_IMAGE" python3 -c '
import json, os, platform, sys
i = sys.implementation
v = "{0.major}.{0.minor}.{0.micro}".format(i.version)
print(json.dumps({"implementation_name": i.name, "implementation_version": v,
  "os_name": os.name, "platform_machine": platform.machine(),
  "platform_release": platform.release(), "platform_system": platform.system(),
  "platform_version": platform.version(), "python_full_version": platform.python_version(),
  "platform_python_implementation": platform.python_implementation(),
  "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}))')"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t miss < <("$PYTHON" "$E2E_DIR/wheelhouse_missing.py" "$WH" "$target_env" "pids[operator]==$PIDS_VERSION" "$LOCK")
    [[ ${#miss[@]} -gt 0 ]] || break
    log "wheels the image's python needs in addition: ${miss[*]}"
    "$PYTHON" -m pip wheel --quiet --wheel-dir "$WH" --find-links "$WH" --no-deps "${miss[@]}" >&2
  done
  rm -f "$WH"/pids-*.whl
  touch "$WH/.done"
  # wheelhouses of older pyproject.toml versions
  find "$PIDS_E2E_CACHE" -maxdepth 1 -name 'wheelhouse-*' ! -path "$WH" -exec rm -rf {} +
fi
cp "$WH"/*.whl "$CTX/wheels/"
log "wheelhouse ready ($(ls "$CTX/wheels" | wc -l) wheels, $((SECONDS - t0)) s)"

build() { # tag dockerfile base-image [context]
  log "docker build $1"
  DOCKER_BUILDKIT=0 docker build --quiet \
    --build-arg "BASE_IMAGE=$3" --build-arg "PIDS_VERSION=$PIDS_VERSION" \
    --label "org.opencontainers.image.version=$PIDS_VERSION" \
    -t "$1" -f "$2" "${4:-$CTX}" 2> >(grep -vE 'DEPRECATED|legacy builder|BuildKit is currently|environment-variable|not consumed|^$' >&2) >/dev/null
}
build "pids-worker:$PIDS_VERSION" "$REPO_ROOT/worker/Dockerfile" "$PYTHON_IMAGE"
build "pids-operator:$PIDS_VERSION" "$REPO_ROOT/operator/Dockerfile" "$PYTHON_IMAGE"
build "pids-redis:$PIDS_VERSION" "$E2E_DIR/images/redis/Dockerfile" "$REDIS_BASE_IMAGE"
# The example of users' own code: its wheel (from a scratch copy, fixed timestamps as above),
# then its own Dockerfile, exactly as the README tells users to build it.
APP_CTX="$PIDS_E2E_CACHE/app-context"
rm -rf "$APP_CTX" "$src/app"; mkdir -p "$APP_CTX/dist"
cp -r "$REPO_ROOT/examples/app" "$src/app"
find "$src/app" \( -name __pycache__ -o -name dist -o -name build -o -name '*.egg-info' \) -prune -exec rm -rf {} +
SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$APP_CTX/dist" "$src/app" >&2
cp "$REPO_ROOT/examples/app/Dockerfile" "$REPO_ROOT/examples/app/.dockerignore" "$APP_CTX/"
build "$APP_IMAGE" "$APP_CTX/Dockerfile" "$PYTHON_IMAGE" "$APP_CTX"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^pids-(worker|operator|redis|example-wordcount):' >&2
log "images built in $((SECONDS - t0)) s"
