import { randomBytes } from 'node:crypto';
import { encryptPiccData, sessionMacKey, sunMac, SDM_READ_COUNTER_MAX } from '../../../src/tags/sun';

/**
 * One NTAG 424 DNA in SUN mode, as a factory provisioned it: its UID, its two SDM keys and its read counter. Every
 * tap raises the counter and writes the URL template with fresh PICCData and MAC, as the chip does.
 */
export interface SimulatedTagKeys {
  sdmMetaReadKeyHex: string;
  sdmFileReadKeyHex: string;
}

export interface TapUrlTemplate {
  /** Origin and path of the tap route, e.g. https://patchproof.example/t */
  baseUrl: string;
  piccDataParam: string;
  cmacParam: string;
  macInput: 'empty' | 'picc-data';
}

export class SimulatedTag {
  constructor(
    readonly uidHex: string,
    private readonly keys: SimulatedTagKeys,
    /** The last counter value used; the first tap writes counter + 1. */
    private counter = 0,
  ) {}

  get readCounter(): number {
    return this.counter;
  }

  /** The URL of the next tap. */
  async tap(template: TapUrlTemplate): Promise<{ url: string; readCounter: number }> {
    if (this.counter >= SDM_READ_COUNTER_MAX) throw new Error(`tag ${this.uidHex}: the read counter is exhausted`);
    this.counter += 1;
    const piccHex = encryptPiccData(Buffer.from(this.keys.sdmMetaReadKeyHex, 'hex'), this.uidHex, this.counter, randomBytes(5))
      .toString('hex')
      .toUpperCase();
    const session = await sessionMacKey(Buffer.from(this.keys.sdmFileReadKeyHex, 'hex'), this.uidHex, this.counter);
    const macInput = template.macInput === 'empty' ? Buffer.alloc(0) : Buffer.from(`${piccHex}&${template.cmacParam}=`, 'ascii');
    const mac = (await sunMac(session, macInput)).toString('hex').toUpperCase();
    return { url: `${template.baseUrl}?${template.piccDataParam}=${piccHex}&${template.cmacParam}=${mac}`, readCounter: this.counter };
  }
}
