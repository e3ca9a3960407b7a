import { Transaction } from '@bsv/sdk';
import { addressOfScript } from './addresses';
import type { Block, ChainState, TxRecord, UnspentOutput } from './state';
import { isDataScript } from './validation';

/** The JSON bodies WhatsOnChain returns, built from the simulator's records. */

const SATOSHIS_PER_BSV = 100_000_000;

export function txJson(chain: ChainState, record: TxRecord) {
  const tx = Transaction.fromHex(record.rawHex);
  const block = chain.blockOf(record);
  const vin =
    record.kind === 'tx'
      ? tx.inputs.map((input) => ({
          txid: input.sourceTXID,
          vout: input.sourceOutputIndex,
          scriptSig: { asm: input.unlockingScript?.toASM() ?? '', hex: input.unlockingScript?.toHex() ?? '' },
          sequence: input.sequence,
        }))
      : tx.inputs.map((input) => ({
          coinbase: input.unlockingScript?.toHex() ?? '',
          txid: '',
          vout: 0,
          scriptSig: { asm: '', hex: '' },
          sequence: input.sequence,
        }));
  const vout = record.outputs.map((output, n) => {
    const address = addressOfScript(output.lockingScript, chain.network);
    const type = address ? 'pubkeyhash' : isDataScript(output.lockingScript) ? 'nulldata' : 'nonstandard';
    return {
      value: output.satoshis / SATOSHIS_PER_BSV,
      n,
      scriptPubKey: {
        asm: output.lockingScript.toASM(),
        hex: output.scriptHex,
        ...(address && { reqSigs: 1, addresses: [address] }),
        type,
        isTruncated: false,
      },
    };
  });
  return {
    txid: record.txid,
    hash: record.txid,
    version: tx.version,
    size: record.size,
    locktime: tx.lockTime,
    vin,
    vout,
    // WOC leaves the block fields out for unconfirmed txs.
    ...(block && {
      blockhash: block.hash,
      confirmations: chain.confirmations(record),
      time: block.time,
      blocktime: block.time,
      blockheight: block.height,
    }),
  };
}

export function blockHeaderJson(chain: ChainState, block: Block) {
  const next = chain.blocks[block.height + 1];
  return {
    hash: block.hash,
    confirmations: chain.height - block.height + 1,
    height: block.height,
    version: block.version,
    versionHex: block.version.toString(16).padStart(8, '0'),
    merkleroot: block.merkleRoot,
    num_tx: block.txids.length,
    time: block.time,
    mediantime: block.time,
    nonce: block.nonce,
    bits: block.bits.toString(16),
    difficulty: 1,
    chainwork: (block.height + 1).toString(16).padStart(64, '0'),
    ...(block.height > 0 && { previousblockhash: block.prevHash }),
    ...(next && { nextblockhash: next.hash }),
  };
}

export function chainInfoJson(chain: ChainState) {
  return {
    chain: chain.network,
    blocks: chain.height,
    headers: chain.height,
    bestblockhash: chain.tip.hash,
    difficulty: 1,
    mediantime: chain.tip.time,
    verificationprogress: 1,
    pruned: false,
    chainwork: (chain.height + 1).toString(16).padStart(64, '0'),
  };
}

/** The legacy `/unspent` list: spendable outputs only, so outputs already spent in the mempool are left out. */
export function legacyUnspentJson(unspent: UnspentOutput[]) {
  return unspent.filter((u) => !u.spentInMempoolBy).map((u) => ({ height: u.height, tx_pos: u.vout, tx_hash: u.txid, value: u.satoshis }));
}

/** `/unspent/all` and its confirmed/unconfirmed variants: every unspent-on-chain output, flagged when a mempool tx spends it. */
export function unspentResultJson(unspent: UnspentOutput[]) {
  return unspent.map((u) => ({
    height: u.height,
    tx_pos: u.vout,
    tx_hash: u.txid,
    value: u.satoshis,
    isSpentInMempoolTx: u.spentInMempoolBy !== undefined,
    status: u.height > 0 ? 'confirmed' : 'unconfirmed',
  }));
}

export function txStatusJson(chain: ChainState, txid: string) {
  const record = chain.visibleTx(txid);
  if (!record) return { txid, error: 'unknown' };
  const block = chain.blockOf(record);
  if (!block) return { txid };
  return { txid, blockhash: block.hash, blockheight: block.height, blocktime: block.time, confirmations: chain.confirmations(record) };
}
