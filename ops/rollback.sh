#!/usr/bin/env bash
# Switches back to the previous release (or a named one), restarts the units and waits for /ready and the canary.
# No rebuild: releases stay built under <home>/releases. No prompts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=deploy/lib.sh
. "$here/deploy/lib.sh"

usage() {
  cat <<'USAGE'
Usage: ops/rollback.sh [options]

Points current at the previous release (<home>/previous) or the one named with --to, restarts the units and
waits until the API is ready and the canary passes.

Options:
  --to <sha>            the release to return to (default: the one in <home>/previous)
  --home <dir>          install root (default: $PATCHPROOF_HOME or /opt/patchproof)
  --env-file <file>     production environment (default: /etc/patchproof/patchproof.env)
  --api-url <url>       API base URL (default: http://127.0.0.1:3001)
  --ready-timeout <s>   how long to wait for /ready (default: 120)
  --versioned-workers   Worker Deployment versioning: make the release's version current again (its workers must
                        still run in a slot: a retired release needs a deploy instead), restart only the API
  --list                list the built releases and which one is current
  --dry-run             print every step without changing anything
  -h, --help            this help

Exit codes: 0 rolled back and healthy; 1 failed; 2 usage.
USAGE
}

to=""
list=0
while (($# > 0)); do
  case "$1" in
    --to) to="${2:?--to needs a value}"; shift 2 ;;
    --home) PATCHPROOF_HOME="${2:?--home needs a value}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?--env-file needs a value}"; shift 2 ;;
    --api-url) API_URL="${2:?--api-url needs a value}"; shift 2 ;;
    --ready-timeout) READY_TIMEOUT="${2:?--ready-timeout needs a value}"; shift 2 ;;
    --versioned-workers) use_versioned_workers; shift ;;
    --list) list=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'unknown option: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || { echo "--ready-timeout: a number of seconds" >&2; exit 2; }

if [[ "$list" == 1 ]]; then
  current="$(current_sha || true)"
  for release in "$PATCHPROOF_HOME"/releases/*/; do
    [[ -d "$release" ]] || continue
    name="$(basename "$release")"
    printf '%s %s\n' "$([[ "$name" == "$current" ]] && echo '*' || echo ' ')" "$name"
  done
  exit 0
fi

if [[ -z "$to" ]]; then
  [[ -s "$PATCHPROOF_HOME/previous" ]] || die "no previous release recorded in $PATCHPROOF_HOME/previous; name one with --to"
  to="$(head -n 1 "$PATCHPROOF_HOME/previous")"
fi
[[ "$to" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "--to: a release name such as a commit sha" >&2; exit 2; }

log "rolling back to $to$([[ "$DRY_RUN" == 1 ]] && echo ' (dry run)')"
if [[ "$VERSIONED_WORKERS" == 1 ]]; then
  # New workflows go back to the older version at once; those pinned to the newer one finish there.
  worker_deployment promote "$to" || die "could not make $to current again: are its workers still running in a slot?"
fi
switch_to "$to"
restart_units || die "restarting the units failed"
wait_healthy || die "release $to is not healthy either"
log "rolled back to $to"
