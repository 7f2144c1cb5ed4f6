#!/usr/bin/env bash
# Build and test the DPG contracts with Foundry, and export what Python deploys.
#
#   contracts/build.sh           npm ci (if needed), forge build, forge test, then write the ABI
#                                and bytecode of every deployable contract in contracts/src to
#                                src/dpg/chain/artifacts/<Name>.json
#   contracts/build.sh --check   the same, but writes the artifacts to a temporary directory and
#                                exits 1 if they differ from the committed ones
#   contracts/build.sh --toolchain  only the npm ci (make test runs it first: the tests start anvil)
#
# Everything comes from the npm registry (contracts/package-lock.json): forge and anvil (the
# platform packages carry the binaries), OpenZeppelin, and solc as WebAssembly, which
# ./solc-wasm wraps for forge. Nothing else is downloaded.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ARTIFACTS="$ROOT/src/dpg/chain/artifacts"

check=0
toolchain_only=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    --toolchain) toolchain_only=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: contracts/build.sh [--check | --toolchain]" >&2; exit 2 ;;
esac

cd "$HERE"

# ---------------------------------------------------------------- toolchain (npm ci when stale)
lock_hash=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
stamp=node_modules/.dpg-lock.sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    echo "build.sh: installing the toolchain from package-lock.json (npm ci)" >&2
    # --ignore-scripts: the forge/anvil binaries come in the platform packages; the packages'
    # postinstall would only try to download them again.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$lock_hash" >"$stamp"
fi
[ "$toolchain_only" = 1 ] && exit 0

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform=linux-amd64 ;;
    Linux-aarch64 | Linux-arm64) platform=linux-arm64 ;;
    Darwin-x86_64) platform=darwin-amd64 ;;
    Darwin-arm64) platform=darwin-arm64 ;;
    *) echo "build.sh: no forge binary for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
# The native binary, not node_modules/.bin/forge: that npm wrapper loses forge's exit code.
FORGE="$HERE/node_modules/@foundry-rs/forge-$platform/bin/forge"
if [ ! -x "$FORGE" ]; then
    echo "build.sh: $FORGE is missing; remove contracts/node_modules and run again" >&2
    exit 1
fi

# ---------------------------------------------------------------- build and test
"$FORGE" build
"$FORGE" test

# ---------------------------------------------------------------- export
if [ "$check" = 1 ]; then
    dest=$(mktemp -d)
    trap 'rm -rf "$dest"' EXIT
else
    dest="$ARTIFACTS"
    mkdir -p "$dest"
fi

# One JSON per deployable contract of contracts/src (not abstract, not an interface):
# {"abi", "bytecode", "contractName", "deployedBytecode"}, keys sorted, 2-space indent.
node - "$HERE" "$dest" <<'EOF'
const fs = require('fs');
const path = require('path');
const [here, dest] = process.argv.slice(2);

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

const written = [];
for (const file of fs.readdirSync(path.join(here, 'src')).filter((f) => f.endsWith('.sol')).sort()) {
  const dir = path.join(here, 'out', file);
  for (const json of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const artifact = JSON.parse(fs.readFileSync(path.join(dir, json), 'utf8'));
    const name = path.basename(json, '.json');
    const target = artifact.metadata?.settings?.compilationTarget ?? {};
    if (target[`src/${file}`] !== name) continue; // a contract imported from elsewhere
    const bytecode = artifact.bytecode?.object ?? '0x';
    if (bytecode === '0x' || bytecode === '') continue; // abstract or interface
    const out = sortKeys({
      contractName: name,
      abi: artifact.abi,
      bytecode,
      deployedBytecode: artifact.deployedBytecode.object,
    });
    fs.writeFileSync(path.join(dest, `${name}.json`), JSON.stringify(out, null, 2) + '\n');
    written.push(name);
  }
}
if (written.length === 0) {
  console.error('build.sh: no deployable contract found in out/');
  process.exit(1);
}
console.error(`build.sh: exported ${written.join(', ')}`);
EOF

if [ "$check" = 1 ]; then
    if ! diff -r "$ARTIFACTS" "$dest" >/dev/null 2>&1; then
        echo "build.sh --check: src/dpg/chain/artifacts differs from what the contracts build to:" >&2
        diff -rq "$ARTIFACTS" "$dest" >&2 || true
        echo "run contracts/build.sh and commit the artifacts" >&2
        exit 1
    fi
    echo "build.sh --check: artifacts are up to date"
else
    echo "build.sh: artifacts written to src/dpg/chain/artifacts"
fi
