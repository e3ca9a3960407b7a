#!/usr/bin/env bash
# Test stand-in for systemctl and the patchproof CLI: appends "<name> <args>" to a log file and succeeds.
set -euo pipefail
log="$1"
name="$2"
shift 2
printf '%s %s\n' "$name" "$*" >>"$log"
