#!/usr/bin/env bash
# The review app for real, in tmux at 140x45 and at 80x24: judge a small file (scripted backend), open
# `overseer review`, check the queue is the first screen and the footer shows q and ?, open the item, press `a`,
# check the decision is in the store, then q and check the app has exited.
# Usage: tests/tui/tmux_smoke.sh [PYTHON]   (exit 0 = pass)
set -euo pipefail
PY=${1:-${PYTHON:-python}}
WORK=$(mktemp -d)
SESSION=overseer-smoke-$$
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$PY" - "$WORK/samples.jsonl" <<'PYEOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(20):
        f.write(json.dumps({"id": f"s{i:03d}", "prompt": f"question {i}", "response": f"answer number {i}, in words",
                            "label": "misaligned" if i % 3 == 0 else "aligned"}) + "\n")
PYEOF
"$PY" -m overseer judge "$WORK/samples.jsonl" --backend scripted:flip=0.5 --label-field label -w "$WORK/ws" \
    -o "$WORK/out.jsonl" >/dev/null 2>&1

fail() { echo "FAIL ($1): $2"; echo "$screen"; exit 1; }
wait_for() {  # wait_for PATTERN: until the captured pane matches (10 s at most)
    for _ in $(seq 1 50); do
        screen=$(tmux capture-pane -p -t "$SESSION")
        echo "$screen" | grep -q -- "$1" && return 0
        sleep 0.2
    done
    return 1
}
decisions() { "$PY" -m overseer reviews list --json -w "$WORK/ws" | wc -l; }

expected=0
for size in 140x45 80x24; do
    cols=${size%x*}; rows=${size#*x}
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    tmux new-session -d -s "$SESSION" -x "$cols" -y "$rows" \
        "OVERSEER_REVIEWER=smoke $PY -m overseer review -w $WORK/ws; echo APP-EXITED; sleep 30"
    wait_for "preview" || fail "$size" "the queue screen did not open first"
    echo "$screen" | grep -q "pending [0-9]" || fail "$size" "no pending count in the queue header"
    footer=$(echo "$screen" | grep -v '^\s*$' | tail -n 1)
    echo "$footer" | grep -q "q Quit" || fail "$size" "the footer does not show q"
    echo "$footer" | grep -q "? Help" || fail "$size" "the footer does not show ?"
    tmux send-keys -t "$SESSION" Enter
    wait_for "Reference label" || fail "$size" "enter did not open the item"
    echo "$screen" | grep -q "answer number" || fail "$size" "the response is not on screen"
    tmux send-keys -t "$SESSION" a
    expected=$((expected + 1))
    for _ in $(seq 1 50); do
        n=$(decisions)
        [ "$n" -eq "$expected" ] && break
        sleep 0.2
    done
    [ "$n" -eq "$expected" ] || fail "$size" "expected $expected decision(s), found $n"
    tmux send-keys -t "$SESSION" q
    wait_for "APP-EXITED" || fail "$size" "q did not quit the app"
    echo "PASS at $size: queue first, footer shows q and ?, the key recorded a decision, q quit"
done
"$PY" -m overseer reviews list -w "$WORK/ws"
