#!/usr/bin/env bash
# Runs the long CPU jobs one after another (2 cores: in parallel they only slow each other).
set -u
cd "$(dirname "$0")/.."
. .venv/bin/activate
log() { echo "[$(date +%H:%M:%S)] $*"; }
log "all: start"; /usr/bin/time -f "all wall %e s, max RSS %M KB" spacy project run all . > logs/all.log 2>&1; log "all: rc=$?"
for arm in "$@"; do
  log "$arm: start"; python scripts/study.py run "$arm" --steps 300 > "logs/study-$arm.log" 2>&1; log "$arm: rc=$?"
done
