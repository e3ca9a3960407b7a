import { readFileSync } from 'node:fs';
import path from 'node:path';
import { signatureHeader } from '../../../src/webhooks/signature';
import { verifyPatchProofSignature } from '../../../ops/stand-ins/webhook-receiver/verifySignature';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('webhook signatures', () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'registration.anchored', data: { uid: 'PP-1', txid: 'ab'.repeat(32) } });
  const now = Math.floor(Date.now() / 1000);

  it('docs/API.md carries the verification recipe byte for byte as the receiver stand-in runs it', () => {
    const docs = readFileSync(path.join(ROOT, 'docs', 'API.md'), 'utf8');
    const recipe = readFileSync(path.join(ROOT, 'ops', 'stand-ins', 'webhook-receiver', 'verifySignature.ts'), 'utf8');
    const block = /<!-- webhook-verification-recipe -->\n+```ts\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(block).toBe(recipe);
  });

  it('a receiver with either secret of a rotation accepts the delivery; a wrong secret, a changed body or an old timestamp do not', () => {
    const header = signatureHeader(['whsec_new', 'whsec_old'], now, body);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifyPatchProofSignature('whsec_new', header, body)).toBe(true);
    expect(verifyPatchProofSignature('whsec_old', header, body)).toBe(true);
    expect(verifyPatchProofSignature('whsec_other', header, body)).toBe(false);
    expect(verifyPatchProofSignature('whsec_new', header, body.replace('PP-1', 'PP-2'))).toBe(false);
    expect(verifyPatchProofSignature('whsec_new', signatureHeader(['whsec_new'], now - 301, body), body)).toBe(false);
    expect(verifyPatchProofSignature('whsec_new', 'v1=00', body)).toBe(false);
  });
});
