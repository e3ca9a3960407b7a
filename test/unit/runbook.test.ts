import { BLOCK_TAGS, DESTRUCTIVE_PATTERNS, runbookBlocks } from '../support/runbook';

describe('docs/OPERATIONS.md command blocks', () => {
  const blocks = runbookBlocks();

  it('marks every shell block as runbook-check, non-destructive or destructive', () => {
    const untagged = blocks.filter((b) => !b.tag).map((b) => `line ${b.line}: \`\`\`sh ${b.info}`);
    expect(untagged).toEqual([]);
    expect(blocks.length).toBeGreaterThan(20);
  });

  it('runs something from every tag, and many commands as runbook-check', () => {
    for (const tag of BLOCK_TAGS) expect(blocks.some((b) => b.tag === tag)).toBe(true);
    expect(blocks.filter((b) => b.tag === 'runbook-check').flatMap((b) => b.commands).length).toBeGreaterThanOrEqual(20);
  });

  it('keeps placeholders and state-changing commands out of runbook-check blocks', () => {
    const offending: string[] = [];
    for (const block of blocks.filter((b) => b.tag === 'runbook-check')) {
      for (const command of block.commands) {
        // Comments may name placeholders (`utxo-topup-<fundingKeyId>`); the command itself may not.
        const code = command.replace(/\s+#\s.*$/, '');
        if (/<[A-Za-z][^>]*>/.test(code)) offending.push(`line ${block.line}: placeholder in ${command}`);
        const destructive = DESTRUCTIVE_PATTERNS.find((p) => p.test(code));
        if (destructive) offending.push(`line ${block.line}: ${command} matches ${destructive}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('recognises the destructive commands it guards against', () => {
    const examples = [
      'temporal schedule trigger --schedule-id backup-nightly-schedule',
      'npx patchproof utxo top-up',
      'npx patchproof sweep --changeAddress 1abc --changeKeyId k --destinationAddress 1def',
      'npx patchproof rotate kms --purpose issuer --new-key-id issuer@2',
      'ops/deploy.sh --ref v1.2.3',
      'npx patchproof utxo settings --set UTXO_MIN_POOL=50',
    ];
    for (const example of examples) expect([example, DESTRUCTIVE_PATTERNS.some((p) => p.test(example))]).toEqual([example, true]);
    for (const safe of ['npx patchproof utxo top-up --dry-run', 'ops/deploy.sh --dry-run', 'npx patchproof profile-db']) {
      expect([safe, DESTRUCTIVE_PATTERNS.some((p) => p.test(safe))]).toEqual([safe, false]);
    }
  });
});
