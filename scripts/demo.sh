#!/usr/bin/env bash
# Two devices, alice and bob, pair on this machine with the real paircode binary.
# Loopback only: mDNS is off and bob finds alice through the DHT, bootstrapped from her
# address, so nothing leaves the machine. Data lives in a temp dir removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building paircode (release; the first build compiles ~300 crates and takes minutes)"
cargo build --release -p paircode-cli
bin="${CARGO_TARGET_DIR:-target}/release/paircode"

export PAIRCODE_DATA_DIR="$(mktemp -d /tmp/paircode-demo.XXXXXX)"
export PAIRCODE_PASSWORD="demo password"   # a demo only: a person would type it at a prompt
cleanup() {
  "$bin" --instance alice stop >/dev/null 2>&1 || true
  "$bin" --instance bob stop >/dev/null 2>&1 || true
  rm -rf "$PAIRCODE_DATA_DIR"
}
trap cleanup EXIT
run() { echo "\$ paircode $*"; "$bin" "$@"; echo; }
first_listen_addr() { "$bin" --instance "$1" --json status | sed -n 's/.*"listen":\["\([^"]*\)".*/\1/p'; }

run --instance alice network init
run --instance bob network init
run --instance alice start --no-mdns --listen /ip4/127.0.0.1/tcp/0 --name alice
alice_addr=$(first_listen_addr alice)
run --instance bob start --no-mdns --listen /ip4/127.0.0.1/tcp/0 --name bob --bootstrap "$alice_addr"

echo "\$ paircode --instance alice network pair generate --auto-accept   (in the background)"
"$bin" --instance alice --json network pair generate --auto-accept >"$PAIRCODE_DATA_DIR/generate.out" &
generator=$!
for _ in $(seq 100); do [ -s "$PAIRCODE_DATA_DIR/generate.out" ] && break; sleep 0.05; done
code=$(head -n 1 "$PAIRCODE_DATA_DIR/generate.out" | sed -n 's/.*"words":"\([^"]*\)".*/\1/p')
echo "alice's code: $code"
echo

run --instance bob network pair join --yes --code "$code"
wait "$generator"
echo "alice saw: $(tail -n 1 "$PAIRCODE_DATA_DIR/generate.out")"
echo

run --instance alice network devices
run --instance bob network devices
echo "== restarting both daemons: the pairing survives"
run --instance alice stop
run --instance bob stop
run --instance alice start --no-mdns --listen /ip4/127.0.0.1/tcp/0 --name alice
alice_addr=$(first_listen_addr alice)
run --instance bob start --no-mdns --listen /ip4/127.0.0.1/tcp/0 --name bob --bootstrap "$alice_addr"
sleep 1
run --instance alice network devices
echo "== demo complete"
