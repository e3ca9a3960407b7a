#!/usr/bin/env bash
# Shared by ops/deploy.sh and ops/rollback.sh: release layout, unit restarts, and the post-switch health gate.
#
# Layout under PATCHPROOF_HOME (default /opt/patchproof):
#   releases/<sha>/          one built checkout per release (node_modules, dist/, dist/workflow-bundle.js)
#   releases/<sha>/release.env   DEPLOY_SHA of that release; the units read it through current/
#   current -> releases/<sha>    what the units run (WorkingDirectory=/opt/patchproof/current)
#   previous                     the sha that was current before the last switch (what rollback.sh returns to)

PATCHPROOF_HOME="${PATCHPROOF_HOME:-/opt/patchproof}"
ENV_FILE="${ENV_FILE:-/etc/patchproof/patchproof.env}"
API_URL="${API_URL:-http://127.0.0.1:3001}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
UNITS=(patchproof-worker.service patchproof-email-worker.service patchproof-api.service)
DRY_RUN=0
# Worker Deployment versioning (docs/DEPLOY.md#safe-deploys-of-workflow-code): the workers run in two slots,
# patchproof-{worker,email-worker}@{blue,green}, each on its own release, so a release's pinned workflows keep their
# workers while the next release takes new ones. Only the API restarts from current/.
VERSIONED_WORKERS="${VERSIONED_WORKERS:-0}"
SLOTS=(blue green)

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Runs a command, or prints it under --dry-run. Secrets are never on a command line: they come from ENV_FILE.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ %s\n' "$*"
    return 0
  fi
  "$@"
}

release_dir() { printf '%s/releases/%s' "$PATCHPROOF_HOME" "$1"; }

current_sha() {
  local target
  target="$(readlink "$PATCHPROOF_HOME/current" 2>/dev/null || true)"
  [[ -n "$target" ]] && basename "$target"
}

# The operator CLI of a release, with the production environment loaded (secrets stay in the child's environment).
patchproof_cli() {
  local release="$1"
  shift
  if [[ -n "${PATCHPROOF_CLI:-}" ]]; then
    local cli
    read -ra cli <<<"$PATCHPROOF_CLI"
    run "${cli[@]}" "$@"
    return
  fi
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  run env -C "$release" bash -c 'set -a; . "$0"; set +a; exec node dist/ops/cli/patchproof.js "$@"' "$ENV_FILE" "$@"
}

# Points current at a release atomically (rename over the old link) and remembers what it replaced.
switch_to() {
  local sha="$1" before
  before="$(current_sha || true)"
  [[ "$DRY_RUN" == 1 || -d "$(release_dir "$sha")" ]] || die "release $sha not found under $PATCHPROOF_HOME/releases"
  run ln -sfn "releases/$sha" "$PATCHPROOF_HOME/current.next"
  run mv -T "$PATCHPROOF_HOME/current.next" "$PATCHPROOF_HOME/current"
  if [[ -n "$before" && "$before" != "$sha" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      printf '+ echo %s > %s\n' "$before" "$PATCHPROOF_HOME/previous"
    else
      printf '%s\n' "$before" >"$PATCHPROOF_HOME/previous"
    fi
  fi
  log "current -> $sha (was ${before:-none})"
}

# Workers first: they drain in-flight tasks on SIGTERM (WORKER_SHUTDOWN_*) and pick up the new bundle; then the API.
restart_units() {
  local unit systemctl
  read -ra systemctl <<<"$SYSTEMCTL"
  for unit in "${UNITS[@]}"; do
    run "${systemctl[@]}" restart "$unit" || return 1
  done
}

# /ready until 200, then the SVD canary with the API key: the same gate after a deploy and after a rollback.
wait_healthy() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ wait for %s/ready (up to %ss), then GET %s/api/svd/canary\n' "$API_URL" "$READY_TIMEOUT" "$API_URL"
    return 0
  fi
  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 5 "$API_URL/ready"; do
    if ((SECONDS >= deadline)); then
      log "not ready after ${READY_TIMEOUT}s: $API_URL/ready"
      return 1
    fi
    sleep 2
  done
  log "ready: $API_URL/ready"
  local key=""
  if [[ -r "$ENV_FILE" ]]; then
    key="$(sed -n 's/^API_KEY=//p' "$ENV_FILE" | tail -n 1)"
  fi
  # The key goes in a header read from stdin, never on the command line (ps would show it).
  if ! printf 'x-api-key: %s\n' "$key" | curl -fsS -o /dev/null --max-time 10 -H @- "$API_URL/api/svd/canary"; then
    log "canary failed: $API_URL/api/svd/canary"
    return 1
  fi
  log "canary ok"
}

use_versioned_workers() {
  VERSIONED_WORKERS=1
  UNITS=(patchproof-api.service)
}

# ops/worker-deployment.sh with the env file's Temporal settings (WORKER_DEPLOYMENT_NAME, TEMPORAL_*); replaceable
# on staging and in tests through WORKER_DEPLOYMENT_CLI, as PATCHPROOF_CLI replaces the CLI.
worker_deployment() {
  if [[ -n "${WORKER_DEPLOYMENT_CLI:-}" ]]; then
    local cli
    read -ra cli <<<"$WORKER_DEPLOYMENT_CLI"
    run "${cli[@]}" "$@"
    return
  fi
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  run bash -c 'set -a; . "$0"; set +a; exec "$@"' "$ENV_FILE" "$(dirname "${BASH_SOURCE[0]}")/../worker-deployment.sh" "$@"
}

slot_release() {
  local target
  target="$(readlink "$PATCHPROOF_HOME/slots/$1" 2>/dev/null || true)"
  [[ -n "$target" ]] && basename "$target"
}

# The slot to deploy into: the one not running the current release.
idle_slot() {
  local current slot
  current="$(current_sha || true)"
  for slot in "${SLOTS[@]}"; do
    [[ "$(slot_release "$slot" || true)" == "$current" && -n "$current" ]] || {
      printf '%s' "$slot"
      return
    }
  done
  printf '%s' "${SLOTS[0]}"
}

# Puts a release's workers in a slot and starts them. The release the slot held must have drained first: its
# pinned workflows would otherwise lose their only workers.
start_slot() {
  local slot="$1" release="$2" held systemctl
  held="$(slot_release "$slot" || true)"
  if [[ -n "$held" && "$held" != "$release" ]]; then
    worker_deployment drain-status "$held" || {
      log "slot $slot still runs $held, which is not drained: wait, or see ops/worker-deployment.sh status $held"
      return 1
    }
  fi
  run mkdir -p "$PATCHPROOF_HOME/slots"
  run ln -sfn "../releases/$release" "$PATCHPROOF_HOME/slots/$slot"
  read -ra systemctl <<<"$SYSTEMCTL"
  run "${systemctl[@]}" restart "patchproof-worker@$slot.service" || return 1
  run "${systemctl[@]}" restart "patchproof-email-worker@$slot.service" || return 1
}
