#!/usr/bin/env bash
# Deploys a release of PatchProof on a host set up as in docs/OPERATIONS.md#deploy-and-rollback:
# fetch and build (dist/ and the prebuilt workflow bundle), ensure indexes, switch current, restart the units, wait
# for /ready and the canary, run a system check; on failure, roll back to the previous release. No prompts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=deploy/lib.sh
. "$here/deploy/lib.sh"

usage() {
  cat <<'USAGE'
Usage: ops/deploy.sh [options]

Builds and deploys a release, then checks it; rolls back to the previous release when a check fails.

Options:
  --ref <git ref>       what to deploy from --repo (default: HEAD)
  --repo <dir>          git repository to build from (default: the checkout this script is in)
  --release <sha>       deploy a release already built under <home>/releases/<sha> (no fetch, no build)
  --home <dir>          install root (default: $PATCHPROOF_HOME or /opt/patchproof)
  --env-file <file>     production environment (default: /etc/patchproof/patchproof.env)
  --api-url <url>       API base URL for /ready and the canary (default: http://127.0.0.1:3001)
  --ready-timeout <s>   how long to wait for /ready (default: 120)
  --versioned-workers   Worker Deployment versioning: start the release's workers in the idle slot beside the
                        current ones, make its version current (or --ramp it), restart only the API
  --ramp <percent>      with --versioned-workers: send this share of new workflows to the release, not all
  --no-rollback         leave a failed release in place (for debugging on staging)
  --dry-run             print every step without changing anything
  -h, --help            this help

Environment: SYSTEMCTL (default systemctl), WORKER_DEPLOYMENT_CLI (default: ops/worker-deployment.sh with the env
file loaded) and PATCHPROOF_CLI (default: node dist/ops/cli/patchproof.js of the
release, with the env file loaded) replace those commands on staging and in tests.
Exit codes: 0 deployed and healthy; 1 failed (rolled back unless --no-rollback); 2 usage.
USAGE
}

ref=HEAD
repo=""
release=""
rollback=1
ramp=""
while (($# > 0)); do
  case "$1" in
    --ref) ref="${2:?--ref needs a value}"; shift 2 ;;
    --repo) repo="${2:?--repo needs a value}"; shift 2 ;;
    --release) release="${2:?--release needs a value}"; shift 2 ;;
    --home) PATCHPROOF_HOME="${2:?--home needs a value}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?--env-file needs a value}"; shift 2 ;;
    --api-url) API_URL="${2:?--api-url needs a value}"; shift 2 ;;
    --ready-timeout) READY_TIMEOUT="${2:?--ready-timeout needs a value}"; shift 2 ;;
    --versioned-workers) use_versioned_workers; shift ;;
    --ramp) ramp="${2:?--ramp needs a value}"; shift 2 ;;
    --no-rollback) rollback=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'unknown option: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || { echo "--ready-timeout: a number of seconds" >&2; exit 2; }
[[ -z "$ramp" || ("$VERSIONED_WORKERS" == 1 && "$ramp" =~ ^[0-9]+$ && "$ramp" -le 100) ]] ||
  { echo "--ramp: a percentage from 0 to 100, with --versioned-workers" >&2; exit 2; }

if [[ -z "$release" ]]; then
  repo="${repo:-$(git -C "$here" rev-parse --show-toplevel)}"
  release="$(git -C "$repo" rev-parse --verify "$ref^{commit}")"
fi
[[ "$release" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "--release: a release name such as a commit sha" >&2; exit 2; }
dir="$(release_dir "$release")"
log "deploying $release to $PATCHPROOF_HOME$([[ "$DRY_RUN" == 1 ]] && echo ' (dry run)')"

# 1. Fetch and build, unless this release was built before (a redeploy is a switch, not a rebuild).
if [[ -f "$dir/.release-built" ]]; then
  log "release $release already built"
elif [[ -z "$repo" ]]; then
  die "release $release is not built under $PATCHPROOF_HOME/releases; deploy it with --ref instead"
else
  run mkdir -p "$dir"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ git -C %s archive %s | tar -x -C %s\n' "$repo" "$release" "$dir"
  else
    git -C "$repo" archive "$release" | tar -x -C "$dir"
  fi
  run env -C "$dir" npm ci --no-audit --no-fund
  # tsc to dist/, then dist/workflow-bundle.js (workers/build-workflow-bundle.ts): workers never bundle at start.
  run env -C "$dir" npm run build
  run test -s "$dir/dist/workflow-bundle.js"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ echo DEPLOY_SHA=%s > %s/release.env\n' "$release" "$dir"
  else
    printf 'DEPLOY_SHA=%s\n' "$release" >"$dir/release.env"
    touch "$dir/.release-built"
  fi
fi

# 2. Indexes before the switch: creating is additive, so the running release is unaffected.
patchproof_cli "$dir" ensure-indexes || die "ensure-indexes failed; nothing was switched"

# 3. Switch and restart; 4. gate on /ready, the canary and a system check through the new worker.
previous="$(current_sha || true)"
if [[ "$VERSIONED_WORKERS" == 1 ]]; then
  # The new release's workers start beside the current ones; its version takes new workflows (all, or a ramp share);
  # workflows pinned to the previous version finish on its workers, which stay up until it drains.
  slot="$(idle_slot)"
  log "workers of $release go to slot $slot"
  start_slot "$slot" "$release" || die "could not start the workers of $release in slot $slot; nothing was switched"
  if [[ -n "$ramp" ]]; then
    worker_deployment ramp "$release" "$ramp" || die "could not ramp $release; its workers run in slot $slot, nothing else changed"
  else
    worker_deployment promote "$release" || die "could not make $release current; its workers run in slot $slot, nothing else changed"
  fi
fi
switch_to "$release"
if restart_units && wait_healthy && patchproof_cli "$dir" system-check; then
  log "deployed $release"
  exit 0
fi

log "deploy of $release failed its checks"
if [[ "$rollback" == 1 && -n "$previous" && "$previous" != "$release" ]]; then
  log "rolling back to $previous"
  dry=()
  [[ "$DRY_RUN" == 1 ]] && dry=(--dry-run)
  versioned=()
  [[ "$VERSIONED_WORKERS" == 1 ]] && versioned=(--versioned-workers)
  "$here/rollback.sh" "${versioned[@]}" --home "$PATCHPROOF_HOME" --env-file "$ENV_FILE" --api-url "$API_URL" \
    --ready-timeout "$READY_TIMEOUT" --to "$previous" "${dry[@]}" ||
    log "rollback to $previous failed too: see journalctl -u 'patchproof-*'"
fi
exit 1
