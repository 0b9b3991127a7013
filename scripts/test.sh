#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first (idempotent, fast when
# already installed): a Python venv with cfn-lint and moto, and cargo-nextest when missing.
# Everything cached lives outside the clone, in $LLM_EVAL_CACHE (default ~/.cache/llm-eval).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${LLM_EVAL_CACHE:-$HOME/.cache/llm-eval}"
mkdir -p "$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --no-fail-fast "$@"
echo "==> cargo test --doc --workspace"
cargo test --doc --workspace
