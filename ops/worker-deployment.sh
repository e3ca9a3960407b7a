#!/usr/bin/env bash
# Moves workflow traffic between releases of the workers with Temporal Worker Deployments (docs/DEPLOY.md#safe-deploys-of-workflow-code):
# a release's workers poll as version WORKER_DEPLOYMENT_NAME/<build id>; new workflows go to the current version (or
# a ramp share to the ramping one), pinned running workflows finish on the version they started on.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ops/worker-deployment.sh <command> [build-id] [percentage]

Commands (WORKER_DEPLOYMENT_NAME names the deployment; Temporal's address, namespace, API key and TLS files come from
the same variables the workers read: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*_PATH):
  status [build-id]          the deployment's current and ramping versions, or one version's drainage
  promote <build-id>         make a version current: every new workflow starts there (waits for its workers to poll)
  ramp <build-id> <percent>  send <percent> of new workflows to a version, the rest to the current one
  drain-status <build-id>    exit 0 once a version is drained (no open pinned workflow), 1 while draining
  retire <build-id>          delete a drained version whose workers have stopped; refuses otherwise
  -h, --help                 this help

Environment: TEMPORAL_CLI (default: temporal) and PROMOTE_TIMEOUT (seconds to wait for pollers, default 60).
Exit codes: 0 done; 1 refused or failed (the reason is printed); 2 usage.
USAGE
}

TEMPORAL_CLI="${TEMPORAL_CLI:-temporal}"
PROMOTE_TIMEOUT="${PROMOTE_TIMEOUT:-60}"

die() {
  printf 'worker-deployment: %s\n' "$*" >&2
  exit 1
}

# The workers' own TLS settings, passed to the CLI under its flag names (its env names differ from ours).
temporal_cli() {
  local args=()
  [[ -n "${TEMPORAL_TLS_CERT_PATH:-}" ]] && args+=(--tls-cert-path "$TEMPORAL_TLS_CERT_PATH")
  [[ -n "${TEMPORAL_TLS_KEY_PATH:-}" ]] && args+=(--tls-key-path "$TEMPORAL_TLS_KEY_PATH")
  [[ -n "${TEMPORAL_TLS_CA_PATH:-}" ]] && args+=(--tls-ca-path "$TEMPORAL_TLS_CA_PATH")
  [[ -n "${TEMPORAL_TLS_SERVER_NAME:-}" ]] && args+=(--tls-server-name "$TEMPORAL_TLS_SERVER_NAME")
  # The CLI reads TEMPORAL_TLS itself and refuses values it does not parse; pass TLS on only when it is asked for.
  [[ "${TEMPORAL_TLS:-}" == true ]] && args+=(--tls)
  env -u TEMPORAL_TLS "$TEMPORAL_CLI" "$@" "${args[@]}"
}

command="${1:-}"
case "$command" in
  -h | --help) usage; exit 0 ;;
  status | promote | ramp | drain-status | retire) ;;
  *) usage >&2; exit 2 ;;
esac
[[ -n "${WORKER_DEPLOYMENT_NAME:-}" ]] || die "WORKER_DEPLOYMENT_NAME is not set: the workers are unversioned (docs/DEPLOY.md)"
deployment="$WORKER_DEPLOYMENT_NAME"
build="${2:-}"
if [[ "$command" != status && -z "$build" ]]; then
  usage >&2
  exit 2
fi
[[ -z "$build" || "$build" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "build id: letters, digits, ., _ and -" >&2; exit 2; }

version_json() { temporal_cli worker deployment describe-version --deployment-name "$deployment" --build-id "$1" -o json; }
# The drainage status of a version: draining, drained, or unspecified (current, ramping, or never routed away from).
drainage() { version_json "$1" | sed -n 's/.*"drainageStatus": *"\([a-z]*\)".*/\1/p' | head -n1; }

case "$command" in
  status)
    if [[ -n "$build" ]]; then
      temporal_cli worker deployment describe-version --deployment-name "$deployment" --build-id "$build"
    else
      temporal_cli worker deployment describe --name "$deployment"
    fi
    ;;
  promote)
    # A version exists once one of its workers has polled; until then the server refuses to route to it.
    deadline=$((SECONDS + PROMOTE_TIMEOUT))
    until version_json "$build" >/dev/null 2>&1; do
      ((SECONDS < deadline)) || die "no worker of $deployment/$build has polled within ${PROMOTE_TIMEOUT}s; start its units first"
      sleep 1
    done
    temporal_cli worker deployment set-current-version --deployment-name "$deployment" --build-id "$build" --yes
    ;;
  ramp)
    percentage="${3:-}"
    [[ "$percentage" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "ramp: a percentage from 0 to 100" >&2; exit 2; }
    temporal_cli worker deployment set-ramping-version --deployment-name "$deployment" --build-id "$build" --percentage "$percentage" --yes
    ;;
  drain-status)
    status="$(drainage "$build")"
    printf '%s/%s: %s\n' "$deployment" "$build" "${status:-unknown}"
    [[ "$status" == drained ]]
    ;;
  retire)
    status="$(drainage "$build")"
    [[ "$status" == drained ]] || die "$deployment/$build is ${status:-not known}, not drained: pinned workflows still run on it (see: status $build)"
    temporal_cli worker deployment delete-version --deployment-name "$deployment" --build-id "$build" ||
      die "the server refused to delete $deployment/$build (its workers may still poll: stop them, wait for the poller TTL, retry)"
    ;;
esac
