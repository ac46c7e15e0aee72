#!/usr/bin/env bash
# pseal end to end on a generated cohort: two hospitals, one steward, the embedded SQLite store.
# No interaction: the steward passphrase is set for the demo in PSEAL_PASSPHRASE.
set -euo pipefail
cd "$(dirname "$0")"
OUT="${1:-demo-out}"

echo "== building (release) =="
cargo build --release --quiet -p pseal-cli -p pseal-central -p pseal-fixtures
# Cargo builds into CARGO_TARGET_DIR when it is set (relative to this folder), else into target/.
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$(pwd)/$TARGET" ;; esac
BIN="$TARGET/release"
rm -rf "$OUT"
mkdir -p "$OUT"
export PSEAL_PASSPHRASE="demo passphrase: use a long one in real life"

echo "== generating a synthetic cohort (2 sites, 3 patients each, 2 timepoints) =="
"$BIN/pseal-fixtures" generate --preset demo --out "$OUT/hospitals" --truth "$OUT/cohort-truth.json"

echo "== steward: create the store =="
STEWARD="$("$BIN/pseal-central" init --store "$OUT/steward/store" | tail -n 1)"
echo "steward recipient: $STEWARD"

for SITE in SITE-A SITE-B; do
    echo "== $SITE: set up the workstation, enrol it, export =="
    KEY="$("$BIN/pseal" init --config "$OUT/$SITE/pseal.toml" --site "$SITE" --recipient "$STEWARD" | tail -n 1)"
    "$BIN/pseal-central" enroll --store "$OUT/steward/store" --site "$SITE" --key "$KEY"
    "$BIN/pseal" export --config "$OUT/$SITE/pseal.toml" --input "$OUT/hospitals/$SITE" --out "$OUT/$SITE/outbox"
done

echo "== steward: import every bundle =="
"$BIN/pseal-central" import --store "$OUT/steward/store" --archive "$OUT/archive" "$OUT"/SITE-*/outbox/*.pseal

echo "== steward: verify the audit chain =="
"$BIN/pseal-central" audit --store "$OUT/steward/store" --verify | tail -n 3

echo
echo "== the research archive: $OUT/archive =="
patients=$(tail -n +2 "$OUT/archive/index.csv" | cut -d, -f1 | sort -u | wc -l)
instances=$(($(wc -l < "$OUT/archive/index.csv") - 1))
echo "$instances instances of $patients pseudonymous patients; index: $OUT/archive/index.csv"
head -n 4 "$OUT/archive/index.csv"
echo "..."
