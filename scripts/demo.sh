#!/usr/bin/env bash
# A guided tour of Satchel (`npm run demo`): one case, two mirror folders, the real CLI.
# Shows a first sync, an edit made on one mirror reaching the other in one `sync`, a
# conflicting edit on both sides (both versions kept), then `conflicts` and `status`.
#
# Everything happens in a temporary folder, removed at the end; DEMO_KEEP=1 keeps it to look at.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  BOLD=$'\e[1m' DIM=$'\e[2m' CYAN=$'\e[36m' RESET=$'\e[0m'
else
  BOLD='' DIM='' CYAN='' RESET=''
fi

# A fresh clone: install the npm packages first (builds better-sqlite3's native module).
if [ ! -d node_modules ]; then
  echo "${DIM}installing npm packages (npm ci)…${RESET}"
  npm ci --no-audit --no-fund --silent
fi

# Build when the compiled CLI is missing or older than any source file.
if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/src/cli/main.js -print -quit)" ]; then
  echo "${DIM}building (npm run build)…${RESET}"
  npm run --silent build
fi

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/satchel-demo-XXXXXX")
cleanup() {
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo
    echo "${DIM}kept: $DEMO (case in $DEMO/work, mirrors in $DEMO/stick and $DEMO/share)${RESET}"
  else
    rm -rf "$DEMO"
  fi
}
trap cleanup EXIT

CASE=$DEMO/work
STICK=$DEMO/stick
SHARE=$DEMO/share
mkdir -p "$CASE" "$STICK" "$SHARE"

step() {
  echo
  echo "${BOLD}${CYAN}## $*${RESET}"
}
# Prints a command (with the temp folder shown as $DEMO) and runs it; the demo goes on even
# when a command fails, so the output shows what happened.
run() {
  local shown="${*//$DEMO/\$DEMO}"
  echo "${BOLD}\$ ${shown}${RESET}"
  local rc=0
  (cd "$DEMO" && "$@") || rc=$?
  if [ "$rc" -ne 0 ]; then echo "${DIM}(exit $rc)${RESET}"; fi
}
satchel() {
  node "$REPO/bin/satchel.js" "$@"
}
show_tree() {
  local dir=$1
  echo "${DIM}${dir//$DEMO/\$DEMO}:${RESET}"
  (cd "$dir" && find . -path ./.satchel -prune -o -type f ! -name .satchel-mirror -print | sort | sed 's|^\./|  |')
}

echo "${BOLD}Satchel demo${RESET} — a case ($DEMO/work) and two mirrors: a \"stick\" and a \"share\"."

step "Make the working folder a case, and add two mirrors"
run satchel init "$CASE"
cd "$CASE"
run satchel -C "$CASE" mirror add stick "$STICK"
run satchel -C "$CASE" mirror add share "$SHARE"
run satchel -C "$CASE" mirror list

step "Write a few files in the case, then sync"
mkdir -p "$CASE/notes" "$CASE/src"
printf '# Plans\n- buy milk\n' > "$CASE/notes/plans.md"
printf 'print("hello")\n' > "$CASE/src/hello.py"
printf 'temporary\n' > "$CASE/src/.hello.py.swp" # an editor swap file: ignored by default
run satchel -C "$CASE" sync
show_tree "$STICK"
show_tree "$SHARE"

step "Edit a file directly on the stick (as on another computer), then sync once"
mkdir -p "$STICK/notes" && printf '# Plans\n- buy milk\n- call Ada\n' > "$STICK/notes/plans.md"
run satchel -C "$CASE" sync
echo "${DIM}the share now has the stick's edit:${RESET}"
run cat "$SHARE/notes/plans.md"

step "Edit the same file differently in the case and on the share, then sync"
printf 'print("hello from the case")\n' > "$CASE/src/hello.py"
touch -d '-5 seconds' "$CASE/src/hello.py"
mkdir -p "$SHARE/src" && printf 'print("hello from the share")\n' > "$SHARE/src/hello.py"
run satchel -C "$CASE" sync
echo "${DIM}both versions are kept, the older one as a conflict copy, in the case and on every mirror${RESET}"
echo "${DIM}(the editor swap file .hello.py.swp stays in the case: ignored by default):${RESET}"
show_tree "$CASE"
show_tree "$STICK"
for f in "$CASE"/src/hello*.py; do
  echo "${DIM}${f//$DEMO/\$DEMO}:${RESET} $(cat "$f")"
done

step "List the conflicts, and the status of every mirror"
run satchel -C "$CASE" conflicts
run satchel -C "$CASE" status

step "A second sync right away has nothing to do"
run satchel -C "$CASE" sync

step "Live replication: satchel watch ships every save at once"
run satchel -C "$CASE" resolve src/hello.py --keep both
(cd "$CASE" && exec node "$REPO/bin/satchel.js" watch 2> "$DEMO/watch.log") &
WATCH_PID=$!
for _ in $(seq 1 100); do grep -q 'started' "$DEMO/watch.log" 2> /dev/null && break; sleep 0.05; done
printf '%s\n' '- water the plants' >> "$CASE/notes/plans.md"
echo "${BOLD}\$ echo '- water the plants' >> \$DEMO/work/notes/plans.md${RESET}"
for _ in $(seq 1 100); do grep -q 'water' "$SHARE/notes/plans.md" && grep -q 'water' "$STICK/notes/plans.md" && break; sleep 0.01; done
echo "${DIM}a moment later, on the stick and the share:${RESET}"
run tail -n 1 "$STICK/notes/plans.md" "$SHARE/notes/plans.md"
printf 'print("edited on the stick")\n' > "$STICK/src/hello.py"
echo "${BOLD}\$ echo 'print(\"edited on the stick\")' > \$DEMO/stick/src/hello.py${RESET}"
for _ in $(seq 1 200); do grep -q 'stick' "$SHARE/src/hello.py" && break; sleep 0.01; done
echo "${DIM}the watched stick's edit reached the case and the share:${RESET}"
run cat "$CASE/src/hello.py" "$SHARE/src/hello.py"
kill -TERM "$WATCH_PID" && wait "$WATCH_PID" || true
echo "${DIM}what the daemon logged (also in .satchel/events.log):${RESET}"
sed 's/^/  /' "$DEMO/watch.log"

echo
echo "${BOLD}Done.${RESET} Everything ran on temporary folders (DEMO_KEEP=1 keeps them)."

