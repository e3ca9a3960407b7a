import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { merkleProofs } from '../../src/anchoring/merkle';
import type { SignedTransaction } from '../../src/chain/signing';
import type { PoolSettings } from '../../src/config';
import type { AnchoringPolicy, AnchorRequest } from '../../workflows/anchoring/shared';
import type { PoolAccounts } from '../../workflows/pool/shared';
import type { RegistrationRequest } from '../../src/registration/record';
import type { RegistrationInput } from '../../workflows/registration/shared';
import type { AllActivities } from './workflowWorker';

/** A deterministic 64-hex value (txid, record hash) named by `seed`. */
export function hex64(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

/** The txid the fake signer gives a plan: a hash of the plan, so a rebuilt plan with other inputs gets another txid. */
export function txidOfPlan(plan: unknown): string {
  return hex64(JSON.stringify(plan));
}

export const POOL_SETTINGS: PoolSettings = {
  minPool: 10,
  splitSizeSats: 1_000,
  maxSplitOutputs: 50,
  dustThresholdSats: 546,
  dustSweepLimit: 20,
  minConfirmations: 2,
  feePerKb: 100,
  sweepMaxInputs: 100,
  confirmationPollSeconds: 30,
};

export const POOL_ACCOUNTS: PoolAccounts = {
  funding: {
    keyIdentifier: 'funding',
    address: '1FundingAddressXXXXXXXXXXXXXXXXXX',
    lockingScriptHex: '76a914' + 'aa'.repeat(20) + '88ac',
  },
  change: { keyIdentifier: 'change', address: '1ChangeAddressXXXXXXXXXXXXXXXXXXX', lockingScriptHex: '76a914' + 'bb'.repeat(20) + '88ac' },
  network: 'test',
};

type ChainActivityName =
  | 'anchoringPolicy'
  | 'planAnchor'
  | 'signTransaction'
  | 'broadcastTransaction'
  | 'recordPoolSpend'
  | 'recordConfirmations'
  | 'ingestPoolOutputs'
  | 'giveBackReservations';

/**
 * The anchoring, signing and pool activities of one anchor, against a fake chain: planAnchor reserves one output
 * per round (named by the round) and returns the record hashes' real Merkle proofs; the signer names the tx by its
 * plan; every confirmation poll of a broadcast tx finds one more confirmation; a tx never broadcast is unknown.
 */
export function fakeChainActivities(policy: AnchoringPolicy): Pick<AllActivities, ChainActivityName> {
  const polls = new Map<string, number>();
  return {
    anchoringPolicy: async () => policy,
    planAnchor: async ({ recordHashes, round, label }) => ({
      plan: {
        inputs: [
          {
            txid: hex64(`funding-${label}-${round}`),
            vout: 0,
            satoshis: 5_000,
            lockingScriptHex: POOL_ACCOUNTS.funding.lockingScriptHex,
            keyIdentifier: 'funding',
          },
        ],
        outputs: [{ kind: 'data', pushes: [[0x01]] }],
        changeAddress: POOL_ACCOUNTS.change.address,
        minChangeSats: 135,
        feeRateSatPerKb: POOL_SETTINGS.feePerKb,
      },
      proofs: merkleProofs(recordHashes),
      change: { keyIdentifier: POOL_ACCOUNTS.change.keyIdentifier, lockingScriptHex: POOL_ACCOUNTS.change.lockingScriptHex },
      minConfirmations: policy.minConfirmations,
      pollSeconds: policy.pollSeconds,
    }),
    signTransaction: async (plan) => signedFor(plan),
    broadcastTransaction: async (signed) => {
      polls.set(signed.txid, polls.get(signed.txid) ?? 0);
      return { txid: signed.txid, alreadyKnown: false };
    },
    recordPoolSpend: async () => undefined,
    recordConfirmations: async (txid) => {
      const seen = polls.get(txid);
      if (seen === undefined) return null;
      polls.set(txid, seen + 1);
      return { confirmations: seen + 1, blockHeight: 800_000 + seen };
    },
    ingestPoolOutputs: async ({ outputs }) => ({ added: outputs.length }),
    giveBackReservations: async () => 1,
  };
}

/** What the fake signer returns for a plan: inputs minus outputs is the fee, less the change it keeps. */
export function signedFor(plan: { inputs: { satoshis: number }[]; outputs: unknown[] }): SignedTransaction {
  const inputSats = plan.inputs.reduce((sum, input) => sum + input.satoshis, 0);
  return {
    txid: txidOfPlan(plan),
    hex: '00',
    fee: plan.inputs.length * 150,
    size: 200,
    outputCount: plan.outputs.length + 1,
    changeVout: plan.outputs.length,
    changeSatoshis: inputSats - plan.inputs.length * 150,
  };
}

/** The fake chain, with a planner that finds no pool output for its first `refusals` plans (then plans as usual). */
export function chainShortOfFunds(policy: AnchoringPolicy, refusals: number): Pick<AllActivities, ChainActivityName> {
  const chain = fakeChainActivities(policy);
  let left = refusals;
  return {
    ...chain,
    planAnchor: async (input) => {
      if (left-- > 0) throw nonRetryable('InsufficientFunds', 'insufficient funds: top the pool up');
      return chain.planAnchor(input);
    },
  };
}

/** A failure as the real activity raises it: non-retryable, with the type workflows branch on. */
export function nonRetryable(type: string, message = `${type} (mocked)`): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/** The record hash the fake registration store gives a uid. */
export function registrationRecordHash(uid: string): string {
  return hex64(`record-${uid}`);
}

/** The anchor request a registration's prepareRegistration hands to the batcher: settled by its batch. */
export function settledRegistrationRequest(uid: string, subjectWorkflowId = `registration-${uid}`): AnchorRequest {
  return { key: `registration:${uid}`, recordHash: registrationRecordHash(uid), subjectWorkflowId, settle: { kind: 'registration', uid } };
}

/**
 * The registration's own activities, answering as the stores would. prepareRegistration hands the record to
 * `enqueue` (the batcher, in tests that run one) as the real activity does, and names the confirmations anchors
 * wait for.
 */
export function registrationStores(
  enqueue: (request: AnchorRequest) => Promise<void> = async () => undefined,
  confirmations = 2,
): Pick<
  AllActivities,
  | 'prepareRegistration'
  | 'markRegistrationsAnchoring'
  | 'markRegistrationsAnchored'
  | 'persistPendingRegistration'
  | 'signRegistrationRecord'
  | 'markRegistrationAnchoring'
  | 'markRegistrationAnchored'
  | 'markRegistrationFailed'
> {
  return {
    prepareRegistration: async ({ request, registrationId }) => {
      const uid = request.product.uid_tag_id;
      await enqueue(settledRegistrationRequest(uid, registrationId));
      return { recordHash: registrationRecordHash(uid), confirmations };
    },
    markRegistrationsAnchoring: async () => undefined,
    markRegistrationsAnchored: async ({ records }) => ({ anchored: records.length }),
    persistPendingRegistration: async ({ request }) => ({ recordHash: registrationRecordHash(request.product.uid_tag_id) }),
    signRegistrationRecord: async () => ({ signatureDerHex: '3044', pubKeyHex: '02'.padEnd(66, '1') }),
    markRegistrationAnchoring: async () => undefined,
    markRegistrationAnchored: async () => undefined,
    markRegistrationFailed: async () => undefined,
  };
}

/** A registration's input for this uid. */
export function registrationInput(uid: string): RegistrationInput {
  const request: RegistrationRequest = { product: { uid_tag_id: uid, name: 'Jacket' }, auth: { owner: `owner-of-${uid}` } };
  return { request, requestHash: hex64(JSON.stringify(request)) };
}
