import { BigNumber, Curve, ECDSA, PrivateKey, Signature, Utils } from '@bsv/sdk';
import type { DigestSignRequest, DigestSignature, DigestSigner } from '../../src/chain/signing';

/**
 * An in-memory signer for unit tests of transaction building: keys generated per test run (never committed),
 * counting calls, optionally answering high-S or tampering, like a misbehaving KMS would.
 */
export class LocalSigner implements DigestSigner {
  readonly keys = new Map<string, PrivateKey>();
  calls: DigestSignRequest[][] = [];
  mode: 'honest' | 'high-s' | 'drop-last' | 'wrong-key' | 'garbage' | 'other-digest' = 'honest';

  key(keyIdentifier: string): PrivateKey {
    let key = this.keys.get(keyIdentifier);
    if (!key) {
      key = PrivateKey.fromRandom();
      this.keys.set(keyIdentifier, key);
    }
    return key;
  }

  async sign(requests: DigestSignRequest[]): Promise<DigestSignature[]> {
    this.calls.push(requests);
    const n = new Curve().n;
    const answers = requests.map((request) => {
      const key = this.mode === 'wrong-key' ? PrivateKey.fromRandom() : this.key(request.keyIdentifier);
      const digest = this.mode === 'other-digest' ? new Array<number>(32).fill(9) : Utils.toArray(request.digestHex, 'hex');
      let signature = ECDSA.sign(new BigNumber(digest), key, true);
      if (this.mode === 'high-s') signature = new Signature(signature.r, n.sub(signature.s));
      return {
        signatureDerHex: this.mode === 'garbage' ? 'deadbeef' : (signature.toDER('hex') as string),
        pubKeyHex: key.toPublicKey().toString(),
      };
    });
    return Promise.resolve(this.mode === 'drop-last' ? answers.slice(0, -1) : answers);
  }
}
