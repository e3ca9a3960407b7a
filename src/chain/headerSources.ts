import { z } from 'zod';
import type { WocClient } from '../woc/client';

/**
 * Where a verifier learns which block is the chain's at a height: a headers file the auditor trusts, or a chain
 * service. A proof bundle's own header is only evidence once a source like this names the same block.
 */
export interface HeaderSource {
  /** For messages: "headers file h.json", "the chain service". */
  readonly name: string;
  /** The chain's block at `height`, with its confirmations; null when the source does not reach that height. */
  headerAt(height: number): Promise<{ hash: string; merkleRoot: string; confirmations: number } | null>;
  /** The highest height the source knows, for "the headers end at …"; null when it knows none. */
  tipHeight(): Promise<number | null>;
}

export const HEADERS_FILE_FORMAT = 'patchproof-headers/1';

const HEX32 = z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex characters');

/** One header: ours names it `merkleRoot`, bitcoind and WhatsOnChain `merkleroot`; other fields are ignored. */
const HeaderEntrySchema = z
  .object({
    height: z.number().int().nonnegative(),
    hash: HEX32,
    merkleRoot: HEX32.optional(),
    merkleroot: HEX32.optional(),
  })
  .refine((h) => (h.merkleRoot ?? h.merkleroot) !== undefined, 'each header needs merkleRoot (or merkleroot)');

export const HeadersFileSchema = z.union([
  z.object({ format: z.literal(HEADERS_FILE_FORMAT), network: z.enum(['main', 'test']), headers: z.array(HeaderEntrySchema) }),
  z.array(HeaderEntrySchema),
]);

export interface HeadersFile {
  network: 'main' | 'test' | null;
  /** By height. */
  headers: Map<number, { hash: string; merkleRoot: string }>;
}

export class HeadersFileError extends Error {}

/**
 * Reads a headers file (docs/PROOFS.md, "Headers file"): `{format, network, headers: [...]}` as
 * `patchproof headers export` writes it, or a bare array of headers as bitcoind or WhatsOnChain print them. Two
 * different blocks at one height are refused: the file must describe one chain.
 */
export function parseHeadersFile(json: unknown): HeadersFile {
  const parsed = HeadersFileSchema.safeParse(json);
  if (!parsed.success) throw new HeadersFileError(`not a headers file (${parsed.error.issues[0]?.message ?? 'bad shape'})`);
  const entries = Array.isArray(parsed.data) ? parsed.data : parsed.data.headers;
  const headers = new Map<number, { hash: string; merkleRoot: string }>();
  for (const entry of entries) {
    const header = { hash: entry.hash.toLowerCase(), merkleRoot: (entry.merkleRoot ?? entry.merkleroot)!.toLowerCase() };
    const known = headers.get(entry.height);
    if (known && (known.hash !== header.hash || known.merkleRoot !== header.merkleRoot)) {
      throw new HeadersFileError(`two different blocks at height ${entry.height}`);
    }
    headers.set(entry.height, header);
  }
  return { network: Array.isArray(parsed.data) ? null : parsed.data.network, headers };
}

/** Confirmations count from the file's highest height, as from a chain tip. */
export function headersFileSource(file: HeadersFile, name: string): HeaderSource {
  const tip = file.headers.size === 0 ? null : Math.max(...file.headers.keys());
  return {
    name,
    headerAt: (height) => {
      const header = file.headers.get(height);
      return Promise.resolve(header && tip !== null ? { ...header, confirmations: tip - height + 1 } : null);
    },
    tipHeight: () => Promise.resolve(tip),
  };
}

/** A chain service (WhatsOnChain, or the chain simulator) through the project's client: one request per height asked. */
export function chainServiceHeaderSource(woc: Pick<WocClient, 'getBlockHeader' | 'getChainInfo'>): HeaderSource {
  return {
    name: 'the chain service',
    async headerAt(height) {
      const header = await woc.getBlockHeader(height);
      return header && { hash: header.hash, merkleRoot: header.merkleRoot, confirmations: header.confirmations };
    },
    async tipHeight() {
      return (await woc.getChainInfo()).blocks;
    },
  };
}
