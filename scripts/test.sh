#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first (idempotent, fast when
# already installed): Debian packages, a Python venv with cfn-lint and moto, one with checkov,
# and cargo-nextest when missing.
# Everything cached lives outside the clone, in $LLM_EVAL_CACHE (default ~/.cache/llm-eval).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${LLM_EVAL_CACHE:-$HOME/.cache/llm-eval}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Debian packages the tests drive: headless Chromium and ChromeDriver (browser tests), a real OCI
# registry (docker-registry) with htpasswd basic auth, and skopeo + umoci to pull back and unpack
# what was pushed. Only missing ones are installed.
missing=()
for pair in chromium:chromium chromedriver:chromium-driver docker-registry:docker-registry \
  skopeo:skopeo umoci:umoci htpasswd:apache2-utils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python tools, pinned, in a venv of our own.
venv="$cache/venv"
pip_pins=("cfn-lint==1.51.0" "moto[server]==5.2.1")
stamp="$venv/.pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pip_pins[*]}" ]; then
  echo "==> installing ${pip_pins[*]} into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_pins[@]}"
  echo "${pip_pins[*]}" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export CFN_LINT="$venv/bin/cfn-lint"

# checkov (the second opinion on our templates), pinned, in a venv of its own: it pins its own
# cfn-lint and boto3, which must not replace the versions above.
checkov_venv="$cache/checkov-venv"
checkov_pin="checkov==3.3.30"
if [ ! -x "$checkov_venv/bin/checkov" ] || [ "$(cat "$checkov_venv/.pins" 2>/dev/null)" != "$checkov_pin" ]; then
  echo "==> installing $checkov_pin into $checkov_venv"
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check "$checkov_pin"
  echo "$checkov_pin" > "$checkov_venv/.pins"
fi
export CHECKOV="$checkov_venv/bin/checkov"

# CPython 3.14 (the bootstrap Lambda's runtime) with boto3, for the tests that run its inline code.
LAMBDA_PYTHON="$(PIP="$venv/bin/pip" bash scripts/lambda-python.sh "$cache")"
export LAMBDA_PYTHON

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

# Clippy on every target of the workspace (libraries, binaries, tests, benches), -D warnings,
# inside the one test build: clippy-driver wraps rustc for the workspace's own crates only
# (what `cargo clippy` does, but with code generation), so the dependencies are compiled once
# instead of once checked for clippy and once built for the tests. A lint fails the build.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
echo "==> cargo test --workspace --all-targets --no-run (with clippy -D warnings)"
cargo test --workspace --all-targets --no-run --quiet

echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --no-fail-fast "$@"
echo "==> cargo test --doc --workspace"
cargo test --doc --workspace
