import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import { canonicalHash } from '../anchoring/canonical';
import type { StartCounter } from '../temporal/launch';
import { contentFingerprint, storeUnlockableContent } from '../unlock/content';
import { startRegistration } from './launch';
import { registrationWorkflowId } from './ids';
import { tagModel } from '../tags/models';
import type { RegistrationQueue } from './queue';
import { patchModel, type PatchDocument } from './models';
import type { RegistrationRequest } from './record';
import { DEFAULT_TENANT_ID, tenantOf, type Actor } from '../tenancy/apiKeys';

export interface IntakeDeps {
  temporal: Client;
  mongo: Connection;
  /** Counts the workflow start (the API passes its metrics). */
  starts?: StartCounter;
  unlockContentSecret: string;
  /** The bound on registrations waiting to be anchored; a repeat of an accepted request passes it regardless. */
  queue?: Pick<RegistrationQueue, 'admit'>;
  /** The caller's registrations/day quota: taken only for a new registration, as the queue bound. */
  quota?: { take(count: number): Promise<void> };
}

export interface RegistrationSubmission {
  request: RegistrationRequest;
  /** Text only the owner can read; stored encrypted, never in the workflow or the signed record. */
  unlockable?: { content: string };
  idempotencyKey?: string;
  /** The API key that asks; its tenant owns the registration. */
  actor?: Actor;
}

/** The uid is registered (or being registered) by another request; `registrationId` names that registration. */
export class RegistrationConflictError extends Error {
  constructor(
    message: string,
    readonly registrationId: string,
    /** The tenant that holds the uid: another tenant is told only that the uid is taken. */
    readonly tenantId: string,
    /** What another tenant is told, when more than that the uid is taken. */
    readonly messageForOtherTenants?: string,
  ) {
    super(message);
    this.name = 'RegistrationConflictError';
  }
}

/**
 * The hash that recognises the same request again. The unlockable content stays out of the workflow (its history)
 * and out of the hash in clear: a keyed fingerprint stands in.
 */
export function registrationRequestHash(secret: string, request: RegistrationRequest, unlockable?: { content: string }): string {
  return canonicalHash({
    ...request,
    ...(unlockable && { unlockable: contentFingerprint(secret, request.product.uid_tag_id, unlockable.content) }),
  });
}

/** How long a request that lost the start to a concurrent one waits for the winner's record. */
const WINNER_POLLS = 30;
const WINNER_POLL_MS = 100;

/**
 * Takes in a registration: the first request for a uid starts its RegistrationWorkflow; the same request again (same
 * Idempotency-Key and body) gets the same registration; anything else for the uid is a RegistrationConflictError.
 */
export async function submitRegistration(deps: IntakeDeps, submission: RegistrationSubmission): Promise<{ registrationId: string }> {
  const { request, unlockable, idempotencyKey, actor } = submission;
  const uid = request.product.uid_tag_id;
  const patches = patchModel(deps.mongo);
  const requestHash = registrationRequestHash(deps.unlockContentSecret, request, unlockable);
  const existing = await patches.findById(uid).lean();
  if (existing) return answerExisting(existing, requestHash, idempotencyKey, actor);
  if (request.tag) {
    // Answered here so a client hears of it at once; the registration's own binding is what enforces it.
    const tag = await tagModel(deps.mongo).findById(request.tag.uid, { patchUid: 1 }).lean();
    if (tag && tag.patchUid !== uid) {
      const holder = await patches.findById(tag.patchUid, { tenantId: 1 }).lean();
      const message = `Tag ${request.tag.uid} is already bound to another patch.`;
      throw new RegistrationConflictError(
        message,
        registrationWorkflowId(tag.patchUid),
        holder ? tenantOf(holder) : DEFAULT_TENANT_ID,
        message,
      );
    }
  }
  await deps.queue?.admit();
  await deps.quota?.take(1);

  if (unlockable) await storeUnlockableContent(deps.mongo, deps.unlockContentSecret, uid, requestHash, unlockable.content);
  const started = await startRegistration(
    deps.temporal,
    { request, requestHash, ...(idempotencyKey && { idempotencyKey }), ...(actor && { actor }) },
    deps.starts,
  );
  if (!started.alreadyStarted) return { registrationId: started.workflowId };

  // A concurrent request won the id; its record appears as soon as its first activity ran.
  for (let i = 0; i < WINNER_POLLS; i++) {
    const winner = await patches.findById(uid).lean();
    if (winner) return answerExisting(winner, requestHash, idempotencyKey, actor);
    await new Promise((r) => setTimeout(r, WINNER_POLL_MS));
  }
  throw new RegistrationConflictError(`${uid} is already being registered.`, started.workflowId, actor?.tenantId ?? DEFAULT_TENANT_ID);
}

/** The same request again (same tenant, Idempotency-Key and body) gets the same registration; anything else is a conflict. */
function answerExisting(
  patch: PatchDocument,
  requestHash: string,
  idempotencyKey: string | undefined,
  actor: Actor | undefined,
): { registrationId: string } {
  const sameTenant = tenantOf(patch) === (actor?.tenantId ?? DEFAULT_TENANT_ID);
  if (sameTenant && idempotencyKey && patch.idempotencyKey === idempotencyKey && patch.requestHash === requestHash) {
    return { registrationId: patch.registrationId };
  }
  throw new RegistrationConflictError(`${patch._id} is already registered.`, patch.registrationId, tenantOf(patch));
}
