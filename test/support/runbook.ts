import { readFileSync } from 'node:fs';
import path from 'node:path';

export const RUNBOOK_PATH = path.resolve(__dirname, '..', '..', 'docs', 'OPERATIONS.md');

/**
 * How docs/OPERATIONS.md marks its shell blocks (the info string after ```sh):
 * - `runbook-check`: non-destructive and runnable as written against the dev stack; the runbook test runs each
 *   command against the test stack and expects exit 0.
 * - `non-destructive`: changes nothing, but needs a value filled in (`<checkId>`) or a production host; not run.
 * - `destructive`: changes state (spends, writes, pauses, restarts, rotates); never run by the tests.
 */
export const BLOCK_TAGS = ['runbook-check', 'non-destructive', 'destructive'] as const;
export type BlockTag = (typeof BLOCK_TAGS)[number];

export interface RunbookBlock {
  line: number;
  tag: BlockTag | undefined;
  info: string;
  /** Logical commands: continuation lines joined, blank and comment-only lines dropped. */
  commands: string[];
}

export function runbookBlocks(markdown = readFileSync(RUNBOOK_PATH, 'utf8')): RunbookBlock[] {
  const blocks: RunbookBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(sh|bash|shell)\b(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const info = open[2]!.trim();
    const tag = BLOCK_TAGS.find((t) => info.split(/\s+/).includes(t));
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.replace(/^\s{0,3}/, ''));
    const commands: string[] = [];
    let pending = '';
    for (const raw of body) {
      const line = raw.trimEnd();
      if (!pending && (line.trim() === '' || line.trim().startsWith('#'))) continue;
      if (line.endsWith('\\')) {
        pending += `${line.slice(0, -1).trimEnd()} `;
        continue;
      }
      commands.push(`${pending}${line.trim()}`.trim());
      pending = '';
    }
    if (pending.trim()) commands.push(pending.trim());
    blocks.push({ line: i + 1, tag, info, commands });
    i = j;
  }
  return blocks;
}

/** Commands that change state; a `runbook-check` block must contain none of them. */
export const DESTRUCTIVE_PATTERNS: RegExp[] = [
  /\btemporal\s+schedule\s+(trigger|toggle|backfill|update|delete|create)\b/,
  /\btemporal\s+workflow\s+(terminate|cancel|signal|reset|start|execute|delete|update)\b/,
  /\btemporal\s+operator\s+search-attribute\s+create\b/,
  /\butxo\s+top-up\b(?!.*--dry-run)/,
  /\bsweep\b(?!.*(--dry-run|--dryRun))(?!.*--help)/,
  /\butxo\s+settings\s+--(set|clear)\b/,
  /\butxo\s+reconcile\b/,
  /\brotate\s+(kms|jwt|approve|cancel)\b/,
  /\bprofile-db\b.*--level\b/,
  /\b(deploy|rollback)\.sh\b(?!.*(--dry-run|--help|--list))/,
  /\bsystemctl\s+(restart|stop|start|reload|disable|enable)\b/,
  /\bcurl\b.*-X\s*(POST|PUT|DELETE|PATCH)\b/,
  /\b(rm|mv|dropDatabase)\b/,
];
