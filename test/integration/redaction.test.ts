import type { ChildProcess } from 'node:child_process';
import { PrivateKey } from '@bsv/sdk';
import { freePorts } from '../../ops/dev-stack/services';
import { loadConfig } from '../../src/config';
import { REDACTED } from '../../src/logging/redact';
import { connectMongo } from '../../src/db/mongo';
import { SvdClient } from '../../src/sdk/svdClient';
import { jsonCaller } from '../support/http';
import { spawnEntry } from '../support/processes';
import { ownerAuthTestEnv, testEnvironment } from '../support/stack';
import { testEnv } from '../support/testEnv';
import { waitFor as waitUntil } from '../support/workerProcesses';

/**
 * Redaction across the real processes, with no dependency on Prometheus: the API, the main worker and the email
 * worker run as their own Node processes with JSON logs at debug level. The test drives every flow that handles a
 * secret (a wrong API key, bearer JWTs, an email code that arrives through SMTP, an SVD login, a system check), then
 * reads every line the three processes wrote to stdout and stderr.
 */

const JWT_SECRET = 'redaction-jwt-secret-0123456789abcdefgh';

interface Proc {
  name: string;
  child: ChildProcess;
  output: string;
}

type Line = Record<string, unknown>;

/** What Node itself prints for process warnings: `(node:123) [CODE] Warning: …` and its `--trace-warnings` hint. */
const NODE_WARNING = /^\(node:\d+\) |^\(Use `node --trace-warnings/;

describe('no secret reaches any log line of the API, worker and email worker processes', () => {
  const processes: Proc[] = [];
  /** Values that must appear in no line, by name. */
  const secrets: Record<string, string> = {};
  let env: Record<string, string>;
  let apiUrl: string;

  function start(name: string, entry: string, extra: Record<string, string> = {}): Proc {
    const child = spawnEntry(entry, [], { ...env, ...extra });
    const proc: Proc = { name, child, output: '' };
    child.stdout?.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
    processes.push(proc);
    return proc;
  }

  const tails = () => processes.map((p) => `--- ${p.name}\n${p.output.split('\n').slice(-15).join('\n')}`).join('\n');
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) =>
    waitUntil(what, probe, 60_000, { intervalMs: 200, ignoreErrors: true, context: tails });
  const call = jsonCaller(() => apiUrl);

  const lines = (proc: Proc): { raw: string; json?: Line }[] =>
    proc.output
      .split('\n')
      .filter((raw) => raw.trim() !== '')
      .map((raw) => {
        try {
          return { raw, json: JSON.parse(raw) as Line };
        } catch {
          return { raw };
        }
      });
  const byName = (name: string) => processes.find((p) => p.name === name)!;

  beforeAll(async () => {
    const [apiPort, workerPort, temporalPort, emailWorkerPort] = (await freePorts(4)) as [number, number, number, number];
    env = testEnvironment({
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'debug',
      ACCESS_LOG: 'true',
      PORT: String(apiPort),
      BIND: '127.0.0.1',
      WORKER_METRICS_PORT: String(workerPort),
      TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${temporalPort}`,
      WORKFLOW_BUNDLE_PATH: testEnv('workflowBundle'),
      SYSTEM_CHECK_EVERY: 'off',
      JWT_SECRET,
      ...ownerAuthTestEnv(),
    });
    secrets.API_KEY = env.API_KEY!;
    secrets.JWT_SECRET = JWT_SECRET;
    apiUrl = `http://127.0.0.1:${apiPort}`;

    start('worker-main', 'workers/main.ts');
    start('worker-email', 'workers/email.ts', { EMAIL_WORKER_METRICS_PORT: String(emailWorkerPort) });
    start('api', 'api/server.ts');
    await waitFor('the API', async () => ((await fetch(`${apiUrl}/ready`)).ok ? true : undefined));
    await waitFor('the worker', async () => ((await fetch(`http://127.0.0.1:${workerPort}/health`)).ok ? true : undefined));
    await waitFor('the email worker', () =>
      Promise.resolve(byName('worker-email').output.includes('email worker started') ? true : undefined),
    );

    // A wrong API key, in the header and in the Authorization form.
    secrets.WRONG_API_KEY = 'wrong-api-key-redaction-7f3a9c0e1d2b';
    expect((await call('GET', '/v1/admin/system-checks/x', undefined, { 'x-api-key': secrets.WRONG_API_KEY })).status).toBe(401);
    expect((await call('GET', '/v1/admin/rotations', undefined, { authorization: `ApiKey ${secrets.WRONG_API_KEY}` })).status).toBe(401);

    // An email code, requested and read from the SMTP capture, then a wrong code, then the right one.
    const client = new SvdClient({ baseUrl: apiUrl });
    const email = `redaction-${Date.now()}@example.com`;
    secrets.EMAIL = email;
    await client.requestEmailCode(email);
    const code = await waitFor('the verification mail', async () => {
      const res = await fetch(`${testEnv('smtpCaptureUrl')}/messages?to=${encodeURIComponent(email)}`);
      const messages = (await res.json()) as { text: string }[];
      return /\b(\d{6})\b/.exec(messages.at(-1)?.text ?? '')?.[1];
    });
    secrets.CODE = code;
    const wrongCode = code === '000000' ? '111111' : '000000';
    expect((await call('POST', '/v1/auth/submit-verification', { identifier: email, code: wrongCode })).status).toBe(401);
    const verified = await client.submitEmailCode(email, code);
    secrets.EMAIL_TOKEN = verified.token;

    // An SVD key registered with that token, a login whose signature is kept, and the session used as a bearer JWT.
    const pmc = PrivateKey.fromRandom();
    secrets.PMC_PRIVATE_KEY = pmc.toHex();
    secrets.PMC_HEX = SvdClient.publicKeyOf(pmc.toHex());
    await client.register(secrets.PMC_HEX, verified.token);
    const { M } = await client.begin(verified.userId);
    secrets.SIGNATURE = SvdClient.signChallenge(pmc.toHex(), M);
    const session = await client.complete(verified.userId, M, secrets.SIGNATURE);
    secrets.SESSION_TOKEN = session.token;
    expect((await call('GET', '/api/owner/session', undefined, { authorization: `Bearer ${session.token}` })).status).toBe(200);
    // The same session replayed, and a forged one: refused, and logged as refusals.
    expect((await call('POST', '/api/svd/complete', { userId: verified.userId, M, signatureHex: secrets.SIGNATURE })).status).toBe(409);
    const forged = `${session.token.slice(0, -6)}AAAAAA`;
    secrets.FORGED_TOKEN = forged;
    expect((await call('GET', '/api/owner/session', undefined, { authorization: `Bearer ${forged}` })).status).toBe(401);

    // A system check through the main worker (Mongo and Redis probes, activities logging their results).
    const check = await call('POST', '/v1/admin/system-checks', { checkId: 'redaction' }, { 'x-api-key': secrets.API_KEY });
    expect(check.status).toBe(202);
    await waitFor('the system check', async () => {
      const status = await call('GET', '/v1/admin/system-checks/redaction', undefined, { 'x-api-key': secrets.API_KEY! });
      return status.body.state === 'completed' ? true : undefined;
    });
    // The last lines of the flows above are written: the email worker's delivery and the check's recording.
    const written = () =>
      byName('worker-main').output.includes('"system check recorded"') && byName('worker-email').output.includes('"email sent"');
    await waitFor('the activity lines', () => Promise.resolve(written() ? true : undefined));
  }, 180_000);

  afterAll(async () => {
    for (const p of [...processes].reverse()) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        const exited = new Promise((r) => p.child.once('exit', r));
        p.child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      }
    }
    if (env) {
      const mongo = await connectMongo(loadConfig(env).mongo);
      await mongo.dropDatabase();
      await mongo.close();
    }
  }, 60_000);

  it('writes every line of every process as JSON through winston, with its service name', () => {
    for (const proc of processes) {
      const all = lines(proc);
      expect({ proc: proc.name, count: all.length > 5 }).toEqual({ proc: proc.name, count: true });
      // Node's own process warnings (deprecations) go to stderr without winston; they are scanned like every line.
      const notJson = all.filter((l) => !l.json && !NODE_WARNING.test(l.raw)).map((l) => l.raw.slice(0, 200));
      expect({ proc: proc.name, notJson }).toEqual({
        proc: proc.name,
        notJson: [],
      });
      expect({ proc: proc.name, services: [...new Set(all.map((l) => l.json?.service))] }).toEqual({
        proc: proc.name,
        services: [proc.name],
      });
    }
  });

  it('logs the secret-handling flows it drove, so the scan below covers them', () => {
    const messages = (name: string) => lines(byName(name)).map((l) => l.json?.message);
    expect(messages('api')).toEqual(
      expect.arrayContaining([
        'api key rejected',
        'verification code issued',
        'email code refused',
        'email code accepted',
        'svd key registered',
        'svd login completed',
        'http request',
      ]),
    );
    expect(messages('worker-email')).toContain('email sent');
    expect(messages('worker-main')).toContain('system check recorded');
  });

  it('contains no API key, JWT, code, email address, private or public key, or signature in any line', () => {
    expect(Object.keys(secrets).sort()).toEqual(
      [
        'API_KEY',
        'CODE',
        'EMAIL',
        'EMAIL_TOKEN',
        'FORGED_TOKEN',
        'JWT_SECRET',
        'PMC_HEX',
        'PMC_PRIVATE_KEY',
        'SESSION_TOKEN',
        'SIGNATURE',
        'WRONG_API_KEY',
      ].sort(),
    );
    const findings: string[] = [];
    for (const proc of processes) {
      for (const { raw } of lines(proc)) {
        const where = `${proc.name}: ${raw.slice(0, 160)}`;
        for (const [name, value] of Object.entries(secrets))
          if (name !== 'CODE' && raw.includes(value)) findings.push(`${name} in ${where}`);
        // The code is six digits: looked for as a whole value, since the same digits may occur inside a timestamp or id.
        if (new RegExp(`(^|[^0-9A-Za-z])${secrets.CODE}([^0-9A-Za-z]|$)`).test(raw)) findings.push(`the code in ${where}`);
        if (/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./.test(raw)) findings.push(`a JWT in ${where}`);
        if (/Bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/.test(raw)) findings.push(`a bearer credential in ${where}`);
        if (/\b[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/.test(raw)) findings.push(`an email address in ${where}`);
        if (/\b0[23][0-9a-fA-F]{64}\b/.test(raw)) findings.push(`a public key in ${where}`);
      }
    }
    expect(findings).toEqual([]);
  });

  it('tags workflow and activity lines with their workflowId, runId and activityType', () => {
    const main = lines(byName('worker-main')).flatMap((l) => (l.json ? [l.json] : []));
    const recorded = main.find((l) => l.message === 'system check recorded');
    expect(recorded).toMatchObject({
      workflowId: 'system-check-redaction',
      runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      activityType: 'recordSystemCheck',
      workflowType: 'systemCheckWorkflow',
      level: 'info',
    });
    // The SDK's own workflow and activity lines come through the Runtime logger into winston, with the same fields.
    const sdkActivity = main.find((l) => l.message === 'Activity completed' && l.workflowId === 'system-check-redaction');
    expect(sdkActivity).toMatchObject({
      sdkComponent: 'worker',
      workflowRunId: recorded!.runId,
      activityType: expect.stringMatching(/^probe(Mongo|Redis)$|^recordSystemCheck$/),
    });
    // The SDK puts the activity's task token (enough to complete the activity) on these lines: it is redacted.
    expect(sdkActivity!.taskToken).toBe(REDACTED);
    expect(main.filter((l) => 'taskToken' in l && l.taskToken !== REDACTED)).toEqual([]);
    const sdkWorkflow = main.find((l) => l.message === 'Workflow started' && l.workflowId === 'system-check-redaction');
    expect(sdkWorkflow).toMatchObject({ sdkComponent: 'worker', runId: recorded!.runId, workflowType: 'systemCheckWorkflow' });
    const sent = lines(byName('worker-email')).find((l) => l.json?.message === 'email sent')?.json;
    expect(sent).toMatchObject({ workflowId: expect.any(String), runId: expect.any(String), activityType: expect.any(String) });
  });
});
