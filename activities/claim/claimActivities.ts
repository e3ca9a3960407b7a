import { ApplicationFailure } from '@temporalio/activity';
import type { Connection } from 'mongoose';
import { currentHead, patchModel } from '../../src/registration/models';

export interface ClaimActivityDeps {
  mongo: Connection;
}

/** Activities of the claim workflow: reads only. */
export function createClaimActivities(deps: ClaimActivityDeps) {
  return {
    /** The patch's head when the merchant approves: the transfer is of that head. */
    async currentHead(input: { uid: string }): Promise<{ txid: string; owner: string }> {
      const patch = await patchModel(deps.mongo).findById(input.uid).lean();
      const head = patch && currentHead(patch);
      if (!patch || !head) throw ApplicationFailure.nonRetryable(`${input.uid} has no anchored head`, 'PatchMissing');
      return { txid: head.txid, owner: patch.owner };
    },
  };
}

export type ClaimActivities = ReturnType<typeof createClaimActivities>;
