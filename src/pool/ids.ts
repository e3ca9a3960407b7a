/** Workflow, schedule and reservation-owner ids of the pool domain; no other code concatenates these. */

const KEY_IDENTIFIER = /^[A-Za-z0-9._:-]{1,80}$/;

function checkedKey(keyIdentifier: string): string {
  if (!KEY_IDENTIFIER.test(keyIdentifier)) throw new RangeError('key identifier must be 1–80 characters of A–Z, a–z, 0–9, . _ : -');
  return keyIdentifier;
}

/** The top-up lock: one top-up per funding key at a time. */
export function topUpWorkflowId(fundingKeyIdentifier: string): string {
  return `utxo-topup-${checkedKey(fundingKeyIdentifier)}`;
}

/** The sweep lock: one sweep per change address at a time. */
export function sweepWorkflowId(changeAddress: string): string {
  if (!/^[1-9A-HJ-NP-Za-km-z]{25,40}$/.test(changeAddress)) throw new RangeError('change address is not base58');
  return `sweep-${changeAddress}`;
}

export function syncWorkflowId(fundingKeyIdentifier: string): string {
  return `utxo-sync-${checkedKey(fundingKeyIdentifier)}`;
}

export const RECONCILE_WORKFLOW_ID = 'utxo-reconcile';

export const POOL_SCHEDULE_IDS = {
  topUp: 'utxo-topup-schedule',
  sweep: 'utxo-sweep-schedule',
  reconcile: 'utxo-reconcile-schedule',
} as const;

/**
 * Who holds a reservation: one run of one workflow. The run id matters because pool workflow ids are reused by
 * later runs, which must not inherit an earlier run's inputs.
 */
export function reservationOwner(workflowId: string, runId: string): string {
  return `${workflowId}@${runId}`;
}

export function parseReservationOwner(owner: string): { workflowId: string; runId?: string } {
  const at = owner.lastIndexOf('@');
  return at > 0 ? { workflowId: owner.slice(0, at), runId: owner.slice(at + 1) } : { workflowId: owner };
}
