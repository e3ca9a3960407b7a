import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { canonicalHash } from '../anchoring/canonical';
import { bulkRegistrationWorkflowId } from '../bulkRegistration/ids';
import { loadLocalTip, type LocalTip } from '../chainFollower/localChain';
import { anchorTxModel, type ChainNetwork } from '../chainFollower/models';
import { issuerKeyPolicy, loadKeyDirectory, type IssuerKeyPolicy } from '../issuerKeys/directory';
import type { KmsClient } from '../kms/client';
import { registrationWorkflowId } from '../registration/ids';
import { patchModel, type PatchDocument } from '../registration/models';
import { checkProofBundle, type ProofBundle } from '../registration/proofBundle';
import { anchoredTransfers, loadProofBundle } from '../registration/verify';
import type { Keyring } from '../rotation/keyring';
import { transferModel, type TransferDocument } from '../transfer/models';
import { createAnchorTxAuditor } from './anchorTxs';
import { FINDING_CODES, type AuditFinding, type FindingCode } from './findings';
import { resultDifferences, workflowOutcome, type WorkflowOutcome } from './workflowResults';

export interface AuditOptions {
  /** Records created (registration or transfer started) in [from, to]. */
  from: Date;
  to: Date;
  /** A record pending or anchoring (or anchored while its workflow is still open) for longer is `stuck`. */
  stuckAfterMs: number;
  /** An anchor tx tracked for longer without a proof is `tx-unproven`. */
  unprovenAfterMs: number;
  /** Records checked at once (each is a few database reads and one Temporal request). */
  concurrency: number;
  /** False: leave Temporal out (records older than the namespace retention have no workflow left to compare). */
  workflows: boolean;
  /** Findings listed in the report; every finding is counted. */
  maxFindings: number;
}

export interface AuditDeps {
  mongo: Connection;
  /** Needed unless `workflows` is false. */
  temporal: Client | null;
  network: ChainNetwork;
  requiredConfirmations: number;
  keys: Pick<Keyring, 'activeKeyId' | 'snapshot'>;
  kms: Pick<KmsClient, 'publicKey'>;
}

export interface AuditReport {
  window: { from: string; to: string };
  network: ChainNetwork;
  /** The chain follower's tip the audit counted from. */
  chain: { tipHeight: number; tipHash: string; syncedAt: string } | null;
  checked: { registrations: number; transfers: number; anchorTxs: number; workflowRequests: number };
  /** Records that are not discrepancies: proven end to end, still within their allowed time, or failed. */
  outcomes: { verified: number; awaitingProof: number; inProgress: number; failed: number };
  findingCounts: Partial<Record<FindingCode, number>>;
  findings: AuditFinding[];
  findingsTruncated: boolean;
  durationMs: number;
  recordsPerSecond: number;
  clean: boolean;
}

/** Documents read from the cursor per round trip: memory stays at one batch plus the records in flight. */
const CURSOR_BATCH = 500;
/** Bulk batches whose workflow outcome is remembered: every record of a batch shares it. */
const REMEMBERED_BATCHES = 1_000;

/**
 * Reconciles MongoDB, Temporal and the chain follower's headers for the records created in a window, streaming
 * them with cursors. Throws when a dependency cannot be read (that is not a finding); discrepancies are findings.
 */
export async function runAudit(deps: AuditDeps, options: AuditOptions, onProgress?: (records: number) => void): Promise<AuditReport> {
  if (options.workflows && !deps.temporal) throw new RangeError('a workflow audit needs a Temporal client');
  const started = Date.now();
  const now = new Date();
  const [tip, issuerKeys] = await Promise.all([
    loadLocalTip(deps.mongo, deps.network),
    loadKeyDirectory({ keys: deps.keys, kms: deps.kms }).then(issuerKeyPolicy),
  ]);
  const report: AuditReport = {
    window: { from: options.from.toISOString(), to: options.to.toISOString() },
    network: deps.network,
    chain: tip && { tipHeight: tip.height, tipHash: tip.hash, syncedAt: tip.syncedAt.toISOString() },
    checked: { registrations: 0, transfers: 0, anchorTxs: 0, workflowRequests: 0 },
    outcomes: { verified: 0, awaitingProof: 0, inProgress: 0, failed: 0 },
    findingCounts: {},
    findings: [],
    findingsTruncated: false,
    durationMs: 0,
    recordsPerSecond: 0,
    clean: true,
  };
  const audit = createRecordAuditor(deps, options, { now, tip, issuerKeys, report });
  const window = { createdAt: { $gte: options.from, $lte: options.to } };
  const progress = () => onProgress?.(report.checked.registrations + report.checked.transfers);

  await forEachBounded(patchModel(deps.mongo).find(window).lean().cursor({ batchSize: CURSOR_BATCH }), options.concurrency, (patch) =>
    audit.registration(patch).then(progress),
  );
  await forEachBounded(transferModel(deps.mongo).find(window).lean().cursor({ batchSize: CURSOR_BATCH }), options.concurrency, (t) =>
    audit.transfer(t).then(progress),
  );
  // Anchor txs of the window that no record led to (an orphaned anchor, a record deleted since).
  await forEachBounded(
    anchorTxModel(deps.mongo)
      .find({ ...window, network: deps.network })
      .select({ _id: 1 })
      .lean()
      .cursor({ batchSize: CURSOR_BATCH }),
    options.concurrency,
    (tx) => audit.anchorTx(tx._id),
  );

  report.checked.anchorTxs = audit.anchorTxsExamined();
  report.durationMs = Date.now() - started;
  const records = report.checked.registrations + report.checked.transfers;
  report.recordsPerSecond = report.durationMs > 0 ? Math.round((records * 1000) / report.durationMs) : records;
  // Counts in the order the codes are documented.
  report.findingCounts = Object.fromEntries(
    FINDING_CODES.filter((code) => report.findingCounts[code]).map((code) => [code, report.findingCounts[code]!]),
  );
  return report;
}

interface AuditContext {
  now: Date;
  tip: LocalTip | null;
  issuerKeys: IssuerKeyPolicy;
  report: AuditReport;
}

function createRecordAuditor(deps: AuditDeps, options: AuditOptions, context: AuditContext) {
  const { report, now } = context;
  const add = (finding: AuditFinding) => {
    report.findingCounts[finding.code] = (report.findingCounts[finding.code] ?? 0) + 1;
    report.clean = false;
    if (report.findings.length < options.maxFindings) report.findings.push(finding);
    else report.findingsTruncated = true;
  };
  const txs = createAnchorTxAuditor({
    mongo: deps.mongo,
    network: deps.network,
    tip: context.tip,
    unprovenAfterMs: options.unprovenAfterMs,
    now,
  });
  // A tx's finding is reported once, however many records it anchors.
  const reportedTxs = new Set<string>();
  const anchorTx = async (txid: string) => {
    const audited = await txs.check(txid);
    if (audited.state === 'discrepancy' && !reportedTxs.has(txid)) {
      reportedTxs.add(txid);
      add(audited.finding);
    }
    return audited;
  };
  // Proof checks see an anchor tx only once it passed the audit above: anything else reads as not yet in a block.
  const auditedChain = {
    getTx: async (txid: string) => {
      const audited = await anchorTx(txid);
      return audited.state === 'proven' ? audited.tx : null;
    },
  };

  const olderThan = (since: Date, ms: number) => now.getTime() - since.getTime() > ms;

  /** The bundle's checks (proofBundle.ts) against the audited chain; returns the verdict's current owner when authentic. */
  async function checkBundle(bundle: ProofBundle, subject: AuditFinding['subject'], txid: string): Promise<string | null> {
    const verdict = await checkProofBundle(bundle, {
      woc: auditedChain,
      requiredConfirmations: deps.requiredConfirmations,
      issuerKeys: context.issuerKeys,
    });
    if (verdict.status === 'invalid') add({ code: 'proof-invalid', subject, txid, detail: verdict.reason });
    else if (verdict.status === 'revoked-key') add({ code: 'issuer-key-revoked', subject, txid, detail: verdict.reason });
    else if (verdict.status === 'pending') report.outcomes.awaitingProof++;
    else return verdict.currentOwner;
    return null;
  }

  function hashProblem(record: Record<string, unknown>, recordHash: string): string | null {
    let hash: string;
    try {
      hash = canonicalHash(record as never);
    } catch (err) {
      return `the stored record has no canonical form (${(err as Error).message})`;
    }
    return hash === recordHash ? null : `the stored record hashes to ${hash}, its stored record hash is ${recordHash}`;
  }

  /** Compares a workflow's outcome with the database; an open workflow is a finding only past the stuck threshold. */
  function compareOutcome(
    outcome: WorkflowOutcome,
    expected: Record<string, string | number>,
    where: { subject: AuditFinding['subject']; txid: string; workflowId: string; updatedAt: Date },
  ): void {
    const { subject, txid, workflowId } = where;
    if (outcome.state === 'missing') {
      add({ code: 'workflow-missing', subject, txid, detail: `no workflow ${workflowId} in Temporal` });
    } else if (outcome.state === 'open') {
      if (olderThan(where.updatedAt, options.stuckAfterMs))
        add({ code: 'workflow-not-completed', subject, txid, detail: `${workflowId} is still running although the record is anchored` });
    } else if (outcome.state !== 'completed') {
      add({ code: 'workflow-not-completed', subject, txid, detail: `${workflowId} ended ${outcome.state}` });
    } else {
      const differences = resultDifferences(outcome.result, expected);
      if (differences.length > 0)
        add({ code: 'workflow-result-mismatch', subject, txid, detail: `${workflowId}: ${differences.join('; ')}` });
    }
  }

  const batchOutcomes = new Map<string, Promise<WorkflowOutcome>>();
  function batchOutcome(batchId: string): Promise<WorkflowOutcome> {
    let outcome = batchOutcomes.get(batchId);
    if (!outcome) {
      if (batchOutcomes.size >= REMEMBERED_BATCHES) batchOutcomes.delete(batchOutcomes.keys().next().value!);
      report.checked.workflowRequests++;
      outcome = workflowOutcome(deps.temporal!, bulkRegistrationWorkflowId(batchId));
      batchOutcomes.set(batchId, outcome);
    }
    return outcome;
  }

  /**
   * The registration's workflow against the record: a single registration's RegistrationResult (uid, recordHash,
   * txid, vout); a bulk record's BulkRegistrationResult (batchId, txid), whose record hashes are in its chunk.
   */
  async function checkRegistrationWorkflow(patch: PatchDocument, txid: string): Promise<void> {
    const subject = { kind: 'registration' as const, id: patch._id };
    if (patch.batchId) {
      const workflowId = bulkRegistrationWorkflowId(patch.batchId);
      const outcome = await batchOutcome(patch.batchId);
      compareOutcome(outcome, { batchId: patch.batchId, txid }, { subject, txid, workflowId, updatedAt: patch.updatedAt });
      return;
    }
    const workflowId = registrationWorkflowId(patch._id);
    if (patch.registrationId !== workflowId) {
      add({
        code: 'workflow-result-mismatch',
        subject,
        txid,
        detail: `the record names workflow ${patch.registrationId}, expected ${workflowId}`,
      });
      return;
    }
    report.checked.workflowRequests++;
    const outcome = await workflowOutcome(deps.temporal!, workflowId);
    const expected = { uid: patch._id, recordHash: patch.recordHash, txid, vout: patch.anchor!.vout };
    compareOutcome(outcome, expected, { subject, txid, workflowId, updatedAt: patch.updatedAt });
  }

  async function checkRegistrationProof(patch: PatchDocument, txid: string): Promise<void> {
    const subject = { kind: 'registration' as const, id: patch._id };
    const problem = hashProblem(patch.record, patch.recordHash);
    if (problem) return add({ code: 'record-hash-mismatch', subject, txid, detail: problem });
    const bundle = await loadProofBundle(deps.mongo, patch, deps.network);
    if (!bundle) {
      const where = patch.batchId
        ? `its chunk ${patch.batchId}/${patch.batchChunk ?? '?'} holds no signed, anchored proof of it`
        : 'no issuer signature or Merkle proof is stored';
      return add({ code: 'anchor-missing', subject, txid, detail: where });
    }
    if (bundle.anchor.txid !== txid) {
      return add({ code: 'proof-invalid', subject, txid, detail: `the record names anchor tx ${txid}, its proof ${bundle.anchor.txid}` });
    }
    const owner = await checkBundle(bundle, subject, txid);
    if (owner === null) return;
    // Without transfers the owner is the first owner; a transferred patch's owner is checked with its last transfer.
    if ((patch.head?.seq ?? 0) === 0 && patch.owner !== owner) {
      return add({ code: 'proof-invalid', subject, txid, detail: 'the stored owner is not the owner the registration record names' });
    }
    report.outcomes.verified++;
  }

  return {
    anchorTxsExamined: () => txs.examined(),
    async anchorTx(txid: string): Promise<void> {
      if (!txs.seen(txid)) await anchorTx(txid);
    },

    async registration(patch: PatchDocument): Promise<void> {
      report.checked.registrations++;
      const subject = { kind: 'registration' as const, id: patch._id };
      if (patch.status === 'failed') {
        report.outcomes.failed++;
        return;
      }
      if (patch.status !== 'anchored') {
        if (!olderThan(patch.createdAt, options.stuckAfterMs)) report.outcomes.inProgress++;
        else
          add({
            code: 'stuck',
            subject,
            ...(patch.anchor?.txid && { txid: patch.anchor.txid }),
            detail: `${patch.status} since ${patch.createdAt.toISOString()}`,
          });
        return;
      }
      const txid = patch.anchor?.txid;
      if (!txid) return add({ code: 'anchor-missing', subject, detail: 'marked anchored without an anchor tx' });
      await Promise.all([checkRegistrationProof(patch, txid), options.workflows && checkRegistrationWorkflow(patch, txid)]);
    },

    async transfer(transfer: TransferDocument): Promise<void> {
      report.checked.transfers++;
      const subject = { kind: 'transfer' as const, id: transfer._id };
      if (transfer.status === 'failed') {
        report.outcomes.failed++;
        return;
      }
      if (transfer.status !== 'anchored') {
        if (!olderThan(transfer.createdAt, options.stuckAfterMs)) report.outcomes.inProgress++;
        else
          add({
            code: 'stuck',
            subject,
            ...(transfer.anchor?.txid && { txid: transfer.anchor.txid }),
            detail: `${transfer.status} since ${transfer.createdAt.toISOString()}`,
          });
        return;
      }
      const txid = transfer.anchor?.txid;
      if (!txid || !transfer.issuerSignature)
        return add({
          code: 'anchor-missing',
          subject,
          ...(txid && { txid }),
          detail: 'marked anchored without an anchor tx or issuer signature',
        });
      const workflow = async () => {
        report.checked.workflowRequests++;
        const outcome = await workflowOutcome(deps.temporal!, transfer._id);
        const expected = { uid: transfer.uid, seq: transfer.seq, recordHash: transfer.recordHash, txid, vout: transfer.anchor!.vout };
        compareOutcome(outcome, expected, { subject, txid, workflowId: transfer._id, updatedAt: transfer.updatedAt });
      };
      const proof = async () => {
        const problem = hashProblem(transfer.record, transfer.recordHash);
        if (problem) return add({ code: 'record-hash-mismatch', subject, txid, detail: problem });
        // The transfer is checked as a link of its patch's ownership chain: registration, then each transfer up to it.
        const [patch, transfers] = await Promise.all([
          patchModel(deps.mongo).findById(transfer.uid).lean(),
          anchoredTransfers(deps.mongo, transfer.uid),
        ]);
        const bundle =
          patch &&
          (await loadProofBundle(
            deps.mongo,
            patch,
            deps.network,
            transfers.filter((t) => t.seq <= transfer.seq),
          ));
        if (!bundle)
          return add({
            code: 'anchor-missing',
            subject,
            txid,
            detail: `the registration of ${transfer.uid} has no anchored proof to link to`,
          });
        const owner = await checkBundle(bundle, subject, txid);
        if (owner === null) return;
        const last = transfers[transfers.length - 1];
        if (last?._id === transfer._id && patch.owner !== owner) {
          return add({ code: 'proof-invalid', subject, txid, detail: 'the stored owner is not the owner this last transfer names' });
        }
        report.outcomes.verified++;
      };
      await Promise.all([proof(), options.workflows && workflow()]);
    },
  };
}

/** Runs `fn` over a stream with at most `limit` calls in flight; the first failure stops the stream and is thrown. */
async function forEachBounded<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  for await (const item of items) {
    if (failure) break;
    const call: Promise<void> = fn(item)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => running.delete(call));
    running.add(call);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw (failure as { error: unknown }).error;
}
