#!/usr/bin/env bash
# The review app for real, in tmux at 120x40: judge a small file (scripted backend), open `overseer review`,
# check the captured screen shows the item, press `a`, and check the decision is in the store.
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
tmux new-session -d -s "$SESSION" -x 120 -y 40 \
    "OVERSEER_REVIEWER=smoke $PY -m overseer review -w $WORK/ws; sleep 30"
for _ in $(seq 1 100); do  # wait for the item screen
    tmux capture-pane -p -t "$SESSION" | grep -q "draft:" && break
    sleep 0.2
done
screen=$(tmux capture-pane -p -t "$SESSION")
echo "$screen"
echo "$screen" | grep -q "judge_vs_reference" || { echo "FAIL: the item is not on screen"; exit 1; }
echo "$screen" | grep -q "answer number" || { echo "FAIL: the response is not on screen"; exit 1; }
tmux send-keys -t "$SESSION" a
for _ in $(seq 1 50); do
    n=$("$PY" -m overseer reviews list --json -w "$WORK/ws" | wc -l)
    [ "$n" -eq 1 ] && break
    sleep 0.2
done
[ "$n" -eq 1 ] || { echo "FAIL: expected 1 decision, found $n"; exit 1; }
"$PY" -m overseer reviews list -w "$WORK/ws"
tmux send-keys -t "$SESSION" q
echo "PASS: the item was shown and the keypress recorded a decision"
