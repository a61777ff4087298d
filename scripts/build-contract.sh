#!/usr/bin/env bash
# Rebuilds the market contract for wasm32-unknown-unknown and copies it to
# chain-spec/wasm/v2v_market.wasm (the bytes every preset embeds).
#
#   scripts/build-contract.sh            rebuild and overwrite the committed file
#   scripts/build-contract.sh --check    rebuild into a temp file and compare with the committed one
#
# Paths are remapped so that the bytes do not depend on where the checkout or Cargo's home is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}/contract
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$root=/v2v --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
cargo build --quiet --locked -p v2v-market --lib --target wasm32-unknown-unknown --profile contract --target-dir "$target_dir"
built="$target_dir/wasm32-unknown-unknown/contract/v2v_market.wasm"
committed="$root/chain-spec/wasm/v2v_market.wasm"
if [ "${1:-}" = "--check" ]; then
  if cmp -s "$built" "$committed"; then
    echo "contract: committed wasm matches a fresh build ($(wc -c <"$built") bytes)"
  else
    echo "contract: committed wasm DIFFERS from a fresh build: run scripts/build-contract.sh and commit" >&2
    exit 1
  fi
else
  mkdir -p "$(dirname "$committed")"
  cp "$built" "$committed"
  echo "contract: wrote $committed ($(wc -c <"$committed") bytes, blake3 in the chain spec)"
fi
