#!/usr/bin/env bash
# Rebuilds the market contract for wasm32-unknown-unknown and copies it to
# chain-spec/wasm/v2v_market.wasm (the bytes every preset embeds), and the upgrade fixtures the
# tests deploy (the same market built with a feature) to contracts/market/fixtures/.
#
#   scripts/build-contract.sh            rebuild and overwrite the committed files
#   scripts/build-contract.sh --check    rebuild and compare with the committed files
#
# Paths are remapped so that the bytes do not depend on where the checkout or Cargo's home is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}/contract
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$root=/v2v --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
status=0
# build FEATURES DESTINATION
build() {
  local features=$1 committed=$2 built dir=$target_dir${1:+/$1}
  cargo build --quiet --locked -p v2v-market --lib --target wasm32-unknown-unknown --profile contract \
    --target-dir "$dir" ${features:+--features "$features"}
  built="$dir/wasm32-unknown-unknown/contract/v2v_market.wasm"
  if [ "${check:-}" = 1 ]; then
    if cmp -s "$built" "$committed"; then
      echo "contract: $committed matches a fresh build ($(wc -c <"$built") bytes)"
    else
      echo "contract: $committed DIFFERS from a fresh build: run scripts/build-contract.sh and commit" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$committed")"
    cp "$built" "$committed"
    echo "contract: wrote $committed ($(wc -c <"$committed") bytes)"
  fi
}
[ "${1:-}" = "--check" ] && check=1
build "" "$root/chain-spec/wasm/v2v_market.wasm"
build next-version "$root/contracts/market/fixtures/v2v_market_v2.wasm"
build failing-migration "$root/contracts/market/fixtures/v2v_market_v2_failing_migration.wasm"
exit $status
