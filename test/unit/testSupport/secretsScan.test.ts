import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { PrivateKey } from '@bsv/sdk';
import jwt from 'jsonwebtoken';
import { decodedText, scanForSecrets, type FindingKind, type ScanSource } from '../../../test/support/secretsScan';

/** A history the way fetchHistory returns it: JSON payloads as bytes, with metadata. */
function history(input: unknown, result: unknown = { ok: true }): unknown {
  const payload = (value: unknown) => ({
    metadata: { encoding: new TextEncoder().encode('json/plain') },
    data: new TextEncoder().encode(JSON.stringify(value)),
  });
  return {
    events: [
      {
        eventId: 1,
        eventType: 1,
        workflowExecutionStartedEventAttributes: {
          workflowType: { name: 'ownerLoginWorkflow' },
          input: { payloads: [payload(input)] },
          memo: { fields: { note: payload('started by the API') } },
        },
      },
      { eventId: 2, eventType: 2, workflowExecutionCompletedEventAttributes: { result: { payloads: [payload(result)] } } },
    ],
  };
}

const logLine = (fields: Record<string, unknown>) =>
  JSON.stringify({ level: 'info', message: 'request', service: 'api', timestamp: '2026-01-01T00:00:00.000Z', ...fields });

const owner = PrivateKey.fromRandom();
const ownerPub = owner.toPublicKey().toString();
const JWT_SECRET = 'unit-jwt-secret-0123456789abcdefghij';
const token = jwt.sign({ sub: 'user-1', typ: 'access' }, JWT_SECRET, { algorithm: 'HS256' });
const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const apiKey = `pp_test_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;

/** One planted secret per kind, each as a log line and as a workflow input. */
const planted: Record<FindingKind, { log: string; historyInput: unknown }> = {
  'literal-secret': { log: `startup with ${JWT_SECRET} loaded`, historyInput: { note: `key ${JWT_SECRET}` } },
  'api-key': { log: logMessage(`rejected key ${apiKey}`), historyInput: { caller: apiKey } },
  jwt: { log: logMessage(`token was ${token}`), historyInput: { session: `then ${token}` } },
  'pem-private-key': { log: logMessage(pem), historyInput: { material: pem } },
  wif: { log: logMessage(`funding ${owner.toWif()}`), historyInput: { funding: owner.toWif() } },
  'private-key-hex': { log: logMessage(`derived ${owner.toHex()}`), historyInput: { scalar: owner.toHex() } },
  'email-code': { log: logMessage('your verification code is 482913'), historyInput: { code: '482913' } },
  'secret-field': { log: logLine({ smtpPass: 'hunter2-hunter2' }), historyInput: { pmcPrivHex: 'not-redacted' } },
  'email-address': { log: logMessage('mailing owner.one@example.test'), historyInput: { to: 'owner.one@example.test' } },
};

function logMessage(message: string): string {
  return logLine({ message });
}

/** What the product writes: redacted fields, masked addresses, ids, hashes, public keys, error codes. */
const cleanLog = [
  logLine({ requestId: '7d0b6f0e-5b7a-4f0e-9a51-0f3c1e2b9d44', statusCode: 200, durationMs: 12, route: '/api/verify/:uid' }),
  logLine({ message: 'code mailed to o***@example.test', code: '[REDACTED]', authorization: '[REDACTED]', apiKeyId: 'a1b2c3d4e5f60718' }),
  logLine({ error: { code: 'NOT_FOUND', message: 'no such patch' }, txid: randomBytes(32).toString('hex'), pmc: ownerPub }),
  logLine({ message: 'Bearer [REDACTED]', attempts: 482913, sats: 1000000, height: 123456 }),
  // A Message-ID as nodemailer makes them: an address's shape, but it names a message.
  logLine({ smtpMessageId: '<521c0b7e-8a1d-4f0e-9c3b-2a7d5e6f8a90@patchproof.example>' }),
  // Shaped like a WIF (base58, 52 characters, K prefix) but its checksum fails.
  logLine({ reference: `K${'1'.repeat(10)}${owner.toWif().slice(11, -1)}z` }),
].join('\n');
const cleanHistory = decodedText(
  history(
    { uid: 'PP-0001', pmc: ownerPub, emailHash: randomBytes(32).toString('hex'), codeHash: '[REDACTED]' },
    { txid: randomBytes(32).toString('hex') },
  ),
);

const kinds = Object.keys(planted) as FindingKind[];
const literals = { JWT_SECRET };

describe('secrets scan', () => {
  it.each(kinds)('finds %s planted in a log line', (kind) => {
    const sources: ScanSource[] = [
      { where: 'logs/api.log', text: `${cleanLog}\n${planted[kind].log}\n${cleanLog}` },
      // The owner's public key is somewhere in what the run produced (as a registered PMC would be).
      { where: 'test-1/clean/run', text: cleanHistory },
    ];
    const findings = scanForSecrets(sources, { literals });
    const hit = findings.find((f) => f.kind === kind);
    expect(hit).toMatchObject({ where: 'logs/api.log', line: cleanLog.split('\n').length + 1 });
    expect(findings.every((f) => f.where === 'logs/api.log')).toBe(true);
  });

  it.each(kinds)('finds %s planted in a workflow history payload', (kind) => {
    const text = decodedText(history(planted[kind].historyInput));
    const findings = scanForSecrets(
      [
        { where: 'test-1/wf-1/run-1', text },
        { where: 'logs/api.log', text: cleanLog },
      ],
      { literals },
    );
    expect(findings.map((f) => f.kind)).toContain(kind);
    expect(findings.every((f) => f.where === 'test-1/wf-1/run-1')).toBe(true);
  });

  it('finds nothing in clean log lines and histories', () => {
    expect(
      scanForSecrets(
        [
          { where: 'logs/api.log', text: cleanLog },
          { where: 'test-1/wf/run', text: cleanHistory },
        ],
        { literals },
      ),
    ).toEqual([]);
  });

  it('counts a 64-hex value as a private key only when its public key is in what the run produced', () => {
    const line = logMessage(`derived ${owner.toHex()}`);
    expect(scanForSecrets([{ where: 'a.log', text: line }])).toEqual([]);
    expect(
      scanForSecrets([
        { where: 'a.log', text: line },
        { where: 'b.log', text: ownerPub },
      ]).map((f) => f.kind),
    ).toEqual(['private-key-hex']);
  });

  it('finds a registered private key even where its public key appears nowhere', () => {
    const pmc = PrivateKey.fromRandom();
    const line = logLine({ note: `signed with ${pmc.toHex()}` });
    expect(scanForSecrets([{ where: 'a.log', text: line }])).toEqual([]);
    expect(scanForSecrets([{ where: 'a.log', text: line }], { privateKeys: [pmc.toHex()] }).map((f) => f.kind)).toEqual([
      'private-key-hex',
    ]);
  });

  it('reports where, and masks the secret in the report', () => {
    const [finding] = scanForSecrets([{ where: 'capture/redaction.api.stdout.log', text: `a\nb\n${JWT_SECRET}` }], { literals });
    expect(finding).toMatchObject({ kind: 'literal-secret', name: 'JWT_SECRET', line: 3 });
    expect(finding?.excerpt).not.toContain(JWT_SECRET);
  });
});
