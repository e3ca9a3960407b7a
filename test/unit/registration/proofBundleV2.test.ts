import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Beef } from '@bsv/sdk';
import { headersFileSource, parseHeadersFile } from '../../../src/chain/headerSources';
import { checkProofBundle, type ProofBundle } from '../../../src/registration/proofBundle';
import { flipByte, proofFixture, type ProofFixture } from '../../support/proofFixtures';

const headersOf = (fixture: ProofFixture, headers = fixture.headersFile) =>
  headersFileSource(parseHeadersFile(headers), 'headers file h.json');
/** Checked against the fixture's headers file, another header source, or (null) none. */
const check = (bundle: ProofBundle, fixture: ProofFixture, headers: ReturnType<typeof headersOf> | null = headersOf(fixture)) =>
  checkProofBundle(bundle, { ...(headers && { headers }), requiredConfirmations: 1, expectedIssuerPubKeyHex: fixture.issuerPubKeyHex });
const withAnchor = (bundle: ProofBundle, anchor: Partial<ProofBundle['anchor']>): ProofBundle => ({
  ...bundle,
  anchor: { ...bundle.anchor, ...anchor },
});

/** One byte of a BUMP node (not the txid) flipped, where it sits in the BEEF bytes. */
function flipBumpHash(beefHex: string, txid: string): string {
  const node = Beef.fromString(beefHex)
    .bumps[0]!.path.flat()
    .find((leaf) => leaf.hash && leaf.hash !== txid)!.hash!;
  const at = beefHex.indexOf(Buffer.from(node, 'hex').reverse().toString('hex'));
  return flipByte(beefHex.slice(0, at + 64), -1) + beefHex.slice(at + 64);
}

describe('proof bundle format 2: self-contained, checked offline', () => {
  const fixture = proofFixture();
  const { v2 } = fixture;

  it('is authentic against a headers file, with confirmations from its highest header and no chain service at all', async () => {
    const verdict = await check(v2, fixture);
    expect(verdict).toMatchObject({ status: 'authentic', confirmations: 3, blockHeight: 102 });
    expect(verdict.status === 'authentic' && verdict.checked.join('\n')).toMatch(
      /BUMP leads to the merkle root of block [0-9a-f]{64} at height 102/,
    );
  });

  it('says what it could not check without headers: incomplete, not authentic and not invalid', async () => {
    const verdict = await check(v2, fixture, null);
    expect(verdict).toMatchObject({
      status: 'incomplete',
      unchecked: [expect.stringMatching(/is the chain's block at height 102: no headers given/)],
    });
  });

  it('is incomplete when the headers file ends before the block, and invalid when it has another block at that height', async () => {
    const short = { ...fixture.headersFile, headers: fixture.headersFile.headers.filter((h) => h.height < 102) };
    expect(await check(v2, fixture, headersOf(fixture, short))).toMatchObject({
      status: 'incomplete',
      unchecked: [expect.stringMatching(/headers file h\.json ends at height 101/)],
    });
    const forked = {
      ...fixture.headersFile,
      headers: fixture.headersFile.headers.map((h) => (h.height === 102 ? { ...h, hash: 'ab'.repeat(32) } : h)),
    };
    expect(await check(v2, fixture, headersOf(fixture, forked))).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/not the chain's block at height 102 .*a reorg may have moved/),
    });
  });

  it('fails a tampered BEEF: one byte of the transaction changes its hash', async () => {
    const verdict = await check(withAnchor(v2, { beef: flipByte(v2.anchor.beef!, -3) }), fixture);
    expect(verdict).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/the anchor BEEF holds a transaction that hashes to [0-9a-f]{64}, not/),
    });
  });

  it('fails a tampered BUMP: a changed node leads to another merkle root', async () => {
    const verdict = await check(withAnchor(v2, { beef: flipBumpHash(v2.anchor.beef!, v2.anchor.txid) }), fixture);
    expect(verdict).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/the BUMP does not lead to the block header's merkle root/),
    });
  });

  it("fails a tampered header: its merkle root, its proof of work, or a block that is not the chain's", async () => {
    const root = await check(withAnchor(v2, { blockHeader: flipByte(v2.anchor.blockHeader!, 40) }), fixture);
    expect(root).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/BUMP does not lead to the block header's merkle root/),
    });
    // Whatever the nonce does to the hash, the header is refused: either its work is short, or it is another block.
    const nonce = await check(withAnchor(v2, { blockHeader: flipByte(v2.anchor.blockHeader!, 76) }), fixture);
    expect(nonce).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/proof of work|not the chain's block at height 102/) });
    const short = await check(withAnchor(v2, { blockHeader: v2.anchor.blockHeader!.slice(0, 158) }), fixture);
    expect(short).toMatchObject({ status: 'invalid', reason: 'the block header is not 80 bytes' });
  });

  it('refuses a BEEF with trailing bytes, for another tx, or a bundle that lost its BEEF', async () => {
    expect(await check(withAnchor(v2, { beef: `${v2.anchor.beef!}00` }), fixture)).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/not in canonical form/),
    });
    expect(await check(withAnchor(v2, { txid: 'ee'.repeat(32) }), fixture)).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/is about [0-9a-f]{64}, not the anchor transaction e{64}/),
    });
    const { beef: _beef, ...bare } = v2.anchor;
    expect(await check({ ...v2, anchor: bare }, fixture)).toMatchObject({
      status: 'invalid',
      reason: 'the anchor carries no BEEF or no block header',
    });
    expect(await check(withAnchor(v2, { blockHeight: 103 }), fixture)).toMatchObject({
      status: 'invalid',
      reason: /BUMP is for block 102/,
    });
  });

  it('still checks the record, signature and Merkle path first: a changed record is invalid before any chain evidence', async () => {
    const verdict = await check({ ...v2, record: { ...v2.record, initialOwner: 'someone else' } }, fixture);
    expect(verdict).toMatchObject({ status: 'invalid', reason: 'the record no longer hashes to the signed digest' });
  });
});

describe('proof bundle format 1 still verifies', () => {
  it('a format 1 bundle kept from before format 2 verifies with one chain lookup, as before', async () => {
    const file = path.join(__dirname, '..', '..', 'fixtures', 'proof-bundle-v1.json');
    const { bundle, issuerPubKeyHex, chainTx } = JSON.parse(readFileSync(file, 'utf8')) as {
      bundle: ProofBundle;
      issuerPubKeyHex: string;
      chainTx: Awaited<ReturnType<ProofFixture['woc']['getTx']>>;
    };
    expect(bundle.format).toBe('patchproof-proof/1');
    const woc = { getTx: (txid: string) => Promise.resolve(txid === chainTx!.txid ? chainTx : null) };
    const verdict = await checkProofBundle(bundle, { woc, requiredConfirmations: 1, expectedIssuerPubKeyHex: issuerPubKeyHex });
    expect(verdict).toMatchObject({
      status: 'authentic',
      confirmations: chainTx!.confirmations,
      checked: [expect.stringMatching(/read from the chain service/)],
    });
    const tampered = { ...bundle, recordHash: bundle.recordHash.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    expect(await checkProofBundle(tampered, { woc, requiredConfirmations: 1 })).toMatchObject({ status: 'invalid' });
  });
});
