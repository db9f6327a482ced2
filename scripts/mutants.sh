#!/usr/bin/env bash
# Mutation testing of bottle's decision-critical code (README, "Mutation
# testing"). Not part of CI's default run: it takes tens of minutes.
#
#   scripts/mutants.sh            # every decision-critical file
#   scripts/mutants.sh FILE…      # only these (e.g. src/spec/copies.rs)
#
# Phase 1 tests each mutant with the unit tests (fast); phase 2 tests the
# survivors of phase 1 again with the end-to-end tests too, so a mutant is
# "missed" only if no test at all notices it. Prints caught / missed /
# unviable per file and the overall score; the missed mutants are listed in
# mutants.out/missed.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$VERSION"; then
    cargo install --locked cargo-mutants --version "$VERSION"
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=(
        src/lifecycle/mod.rs
        src/plan/decide.rs
        src/plan/egress.rs
        src/plan/inputs.rs
        src/plan/limits.rs
        src/plan/mod.rs
        src/plan/step.rs
        src/plan/transfer.rs
        src/smolvm/argv.rs
        src/smolvm/call.rs
        src/smolvm/parse.rs
        src/smolvm/version.rs
        src/spec/fingerprint.rs
        src/spec/hashes.rs
        src/spec/legacy.rs
        src/spec/resolve.rs
        src/state/record.rs
        src/state/store.rs
    )
fi
args=()
for f in "${files[@]}"; do args+=(--file "$f"); done

# A faster linker, where there is one, makes each mutant's build seconds.
if [ -z "${RUSTFLAGS:-}" ] && command -v mold >/dev/null 2>&1; then
    export RUSTFLAGS="-C link-arg=-fuse-ld=mold"
fi
jobs=${MUTANTS_JOBS:-2}
cargo mutants --no-shuffle -j "$jobs" "${args[@]}" -- --lib || true
cargo mutants --no-shuffle -j "$jobs" --iterate --timeout "${MUTANTS_TIMEOUT:-60}" \
    "${args[@]}" -- --lib --test runner || true

# Phase 1's outcomes are in mutants.out.old, phase 2's (its survivors,
# tested again) in mutants.out.
python3 - <<'PY'
import collections, os
def lines(run, name):
    path = os.path.join(run, name)
    return open(path).read().splitlines() if os.path.exists(path) else []
old, new = "mutants.out.old", "mutants.out"
kinds = {
    "caught": lines(old, "caught.txt") + lines(new, "caught.txt"),
    "missed": lines(new, "missed.txt"),
    "timeout": lines(new, "timeout.txt"),
    "unviable": lines(old, "unviable.txt") + lines(new, "unviable.txt"),
}
per = collections.defaultdict(collections.Counter)
for kind, found in kinds.items():
    for line in found:
        per[line.split(":", 1)[0]][kind] += 1
total = collections.Counter()
print(f"{'file':28} {'caught':>7} {'missed':>7} {'timeout':>8} {'unviable':>9}")
for f in sorted(per):
    c = per[f]
    total.update(c)
    print(f"{f:28} {c['caught']:7} {c['missed']:7} {c['timeout']:8} {c['unviable']:9}")
print(f"{'total':28} {total['caught']:7} {total['missed']:7} {total['timeout']:8} {total['unviable']:9}")
viable = total["caught"] + total["missed"] + total["timeout"]
detected = total["caught"] + total["timeout"]
score = 100.0 * detected / viable if viable else 100.0
print(f"caught {detected} of {viable} viable mutants ({score:.1f}%), "
      f"{total['timeout']} of them by a timeout (the suite did not pass in time)")
for m in kinds["timeout"]:
    print(f"  timeout: {m}")
for m in kinds["missed"]:
    print(f"  survived: {m}")
PY
