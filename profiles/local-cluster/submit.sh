#!/usr/bin/env bash
# Fake `qsub`: run the jobscript in the background and print a job id (its pid).
set -euo pipefail
jobscript="${@: -1}"
nohup bash "$jobscript" >/dev/null 2>&1 &
echo "$!"
