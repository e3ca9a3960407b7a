import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePorts } from '../../ops/dev-stack/services';
import { REPO_ROOT } from '../support/processes';

/**
 * `npm run dev` as a user runs it, on other ports and a scratch data dir so it cannot meet a running dev stack:
 * the API answers /ready 200, the Temporal Web UI serves, and Ctrl-C (SIGINT to the process group) leaves no
 * process behind.
 */
describe('npm run dev', () => {
  it('serves /ready and the Web UI, then stops every process on Ctrl-C', async () => {
    const [api, temporal, ui, mongo, redis, sdkMetrics, workerMetrics, kms, woc, smtp, smtpHttp] = (await freePorts(11)) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const dataDir = mkdtempSync(path.join(tmpdir(), 'patchproof-dev-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'ops/dev-stack/dev.ts'], {
      cwd: REPO_ROOT,
      detached: true, // its own process group, like a terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'development',
        PORT: String(api),
        TEMPORAL_ADDRESS: `127.0.0.1:${temporal}`,
        TEMPORAL_UI_PORT: String(ui),
        MONGODB_URI: `mongodb://127.0.0.1:${mongo}/patchproof`,
        REDIS_URL: `redis://127.0.0.1:${redis}`,
        TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${sdkMetrics}`,
        WORKER_METRICS_PORT: String(workerMetrics),
        EMAIL_WORKER_METRICS_PORT: '0',
        KMS_SIGN_URL: `http://127.0.0.1:${kms}`,
        WOC_BASE_URL: `http://127.0.0.1:${woc}`,
        WOC_NETWORK: 'test',
        SMTP_PORT: String(smtp),
        SMTP_CAPTURE_HTTP_PORT: String(smtpHttp),
        PATCHPROOF_DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

    try {
      const deadline = Date.now() + 150_000;
      while (!output.includes('PatchProof dev stack is up') && Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`npm run dev exited early:\n${output}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(output).toContain('PatchProof dev stack is up');

      const ready = await fetch(`http://127.0.0.1:${api}/ready`);
      expect(ready.status).toBe(200);
      const webUi = await fetch(`http://127.0.0.1:${ui}/`);
      expect(webUi.status).toBe(200);
      expect(await webUi.text()).toContain('<html');

      const pidFiles = readdirSync(path.join(dataDir, 'run')).sort();
      expect(pidFiles).toEqual(['chain-simulator.pid', 'dev-kms.pid', 'mongo.pid', 'redis.pid', 'smtp-capture.pid', 'temporal.pid']);
      const servicePids = pidFiles.map((f) => Number(readFileSync(path.join(dataDir, 'run', f), 'utf8')));
      expect((await fetch(`http://127.0.0.1:${kms}/health`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${woc}/v1/bsv/test/chain/info`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${smtpHttp}/messages`)).status).toBe(200);

      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('stopped; nothing left running');
      for (const pid of [...servicePids, child.pid!]) expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(groupMembers(child.pid!)).toEqual([]);
    } catch (err) {
      // What the stack printed is the only record of why it did not come up or go down cleanly.
      process.stderr.write(`--- npm run dev output ---\n${output}\n`);
      throw err;
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 200_000);
});

function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // Field 5 of /proc/<pid>/stat is the process group; the command name (field 2) may contain spaces.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid;
      } catch {
        return false;
      }
    })
    .map(Number);
}
