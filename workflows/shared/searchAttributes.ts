import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes that make every workflow findable in the Web UI and with
 * `temporal workflow list --query`. Registered on the namespace by the dev-stack provisioning, the test setup and
 * the worker at boot (see src/temporal/searchAttributes.ts).
 */
export const PATCH_UID = defineSearchAttributeKey('PatchUid', SearchAttributeType.KEYWORD);
export const TXID = defineSearchAttributeKey('Txid', SearchAttributeType.KEYWORD);
/** What the workflow does: registration, transfer, anchor-batch, utxo-topup, sweep, system-check, … */
export const WORKFLOW_KIND = defineSearchAttributeKey('PatchProofKind', SearchAttributeType.KEYWORD);
/** Domain status, finer than the execution status: pending, anchoring, anchored, ok, degraded, failed, … */
export const WORKFLOW_STATUS = defineSearchAttributeKey('PatchProofStatus', SearchAttributeType.KEYWORD);

/** The bulk batch a workflow works on (`pb-…`): its BulkRegistrationWorkflow. */
export const BATCH_ID = defineSearchAttributeKey('BatchId', SearchAttributeType.KEYWORD);

/** The tenant (brand) a workflow works for: set at start on workflows an API key started. */
export const TENANT_ID = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [PATCH_UID, TXID, WORKFLOW_KIND, WORKFLOW_STATUS, BATCH_ID, TENANT_ID] as const;
