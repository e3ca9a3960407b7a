import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePorts } from '../../ops/dev-stack/services';
import { loadConfig } from '../../src/config';
import { connectMongo } from '../../src/db/mongo';
import { REPO_ROOT } from '../support/processes';

interface DevRun {
  child: ChildProcess;
  dataDir: string;
  output: () => string;
  exited: Promise<number | null>;
  /** Every port the run was given: a process of this run names one of them, or the data dir, on its command line. */
  allPorts: number[];
}

/**
 * `npm run dev` as a user runs it, on other ports and a scratch data dir so it cannot meet a running dev stack.
 * It gets its own process group, like a terminal's foreground job, so Ctrl-C is SIGINT to that group.
 *
 * Through npm on purpose: npm forwards the signal to its child (dev.ts gets a second SIGINT, which it must not treat
 * as "exit now"), and the script must `exec` dev.ts. With `sh -c 'a && b'` dash dies of the SIGINT at once, npm
 * re-raises it and exits while dev.ts is still stopping the services.
 */
async function startDev(): Promise<
  DevRun & { ports: { api: number; ui: number; kms: number; woc: number; smtpHttp: number; mongo: number; webhookReceiver: number } }
> {
  const [api, temporal, ui, mongo, redis, sdkMetrics, workerMetrics, kms, woc, smtp, smtpHttp, tags, webhookReceiver] = (await freePorts(
    13,
  )) as [number, number, number, number, number, number, number, number, number, number, number, number, number];
  const dataDir = mkdtempSync(path.join(tmpdir(), 'patchproof-dev-'));
  const child = spawn('npm', ['run', '--silent', 'dev'], {
    cwd: REPO_ROOT,
    detached: true,
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
      TAG_SIMULATOR_URL: `http://127.0.0.1:${tags}`,
      WEBHOOK_RECEIVER_PORT: String(webhookReceiver),
      PATCHPROOF_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    },
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child,
    dataDir,
    output: () => output,
    exited,
    allPorts: [api, temporal, ui, mongo, redis, sdkMetrics, workerMetrics, kms, woc, smtp, smtpHttp],
    ports: { api, ui, kms, woc, smtpHttp, mongo, webhookReceiver },
  };
}

/** Pids recorded in the run's pid files (run/<service>.pid), by file name. */
function recordedPids(dataDir: string): Map<string, number> {
  const run = path.join(dataDir, 'run');
  const pids = new Map<string, number>();
  if (!existsSync(run)) return pids;
  for (const file of readdirSync(run).filter((f) => f.endsWith('.pid'))) {
    try {
      const pid = Number(readFileSync(path.join(run, file), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) pids.set(file, pid);
    } catch {
      // removed between listing and reading: its service was stopped
    }
  }
  return pids;
}

/** Whatever a failed run left: the process group, every service named in a pid file, and the scratch data dir. */
function cleanUp(run: DevRun, extraPids: Iterable<number> = []): void {
  const kill = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  // A pid is only killed while its command line still shows it is this run's (pids are reused).
  const ours = (pid: number) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      return cmdline.includes(run.dataDir) || run.allPorts.some((port) => new RegExp(`\\b${port}\\b`).test(cmdline));
    } catch {
      return false;
    }
  };
  if (run.child.pid !== undefined) kill(-run.child.pid);
  for (const pid of new Set([...recordedPids(run.dataDir).values(), ...extraPids])) if (ours(pid)) kill(pid);
  rmSync(run.dataDir, { recursive: true, force: true });
}

describe('npm run dev', () => {
  it('serves /ready and the Web UI, restarts a database that stops answering and a service that dies, then stops every process on Ctrl-C', async () => {
    const dev = await startDev();
    const { child, dataDir, output } = dev;
    const { api, ui, kms, woc, smtpHttp, webhookReceiver } = dev.ports;
    try {
      const deadline = Date.now() + 150_000;
      while (!output().includes('PatchProof dev stack is up') && Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`npm run dev exited early:\n${output()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(output()).toContain('PatchProof dev stack is up');

      const ready = await fetch(`http://127.0.0.1:${api}/ready`);
      expect(ready.status).toBe(200);
      const webUi = await fetch(`http://127.0.0.1:${ui}/`);
      expect(webUi.status).toBe(200);
      expect(await webUi.text()).toContain('<html');

      const pidFiles = readdirSync(path.join(dataDir, 'run')).sort();
      expect(pidFiles).toEqual([
        'chain-simulator.pid',
        'dev-kms.pid',
        'mongo-postgresql.pid',
        'mongo.pid',
        'redis.pid',
        'smtp-capture.pid',
        'tag-simulator.pid',
        'temporal.pid',
        'webhook-receiver.pid',
      ]);
      const servicePids = [...recordedPids(dataDir).values()];
      expect(servicePids).toHaveLength(pidFiles.length);
      expect((await fetch(`http://127.0.0.1:${kms}/health`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${woc}/v1/bsv/test/chain/info`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${smtpHttp}/messages`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${webhookReceiver}/deliveries`)).status).toBe(200);

      // The database stops answering (frozen, as a wedged FerretDB is): the supervisor restarts it, data kept.
      const mongo = await connectMongo(
        loadConfig({ NODE_ENV: 'development', MONGODB_URI: `mongodb://127.0.0.1:${dev.ports.mongo}/watchdog` }).mongo,
      );
      await mongo.collection('kept').insertOne({ _id: 'before-the-freeze' } as never);
      await mongo.close();
      const frozen = recordedPids(dataDir).get('mongo.pid')!;
      process.kill(frozen, 'SIGSTOP');
      const frozeAt = Date.now();
      while (!output().includes('mongodb     restarted') && Date.now() - frozeAt < 60_000) await new Promise((r) => setTimeout(r, 250));
      expect(output()).toMatch(/mongodb {5}unresponsive for \d+ s according to \/ready: restarting the database process \(data kept\)/);
      expect(output()).toContain('mongodb     restarted');
      expect(Date.now() - frozeAt).toBeGreaterThanOrEqual(10_000);
      expect(existsSync(`/proc/${frozen}`)).toBe(false);
      expect(recordedPids(dataDir).get('mongo.pid')).not.toBe(frozen);
      const readyAgain = await fetch(`http://127.0.0.1:${api}/ready`);
      expect(readyAgain.status).toBe(200);
      const reconnected = await connectMongo(
        loadConfig({ NODE_ENV: 'development', MONGODB_URI: `mongodb://127.0.0.1:${dev.ports.mongo}/watchdog` }).mongo,
      );
      expect(await reconnected.collection('kept').findOne({ _id: 'before-the-freeze' } as never)).not.toBeNull();
      await reconnected.close();
      servicePids.push(...recordedPids(dataDir).values());

      // A service that dies is started again, and the API rides through it without a restart of its own.
      const redisBefore = recordedPids(dataDir).get('redis.pid')!;
      process.kill(redisBefore, 'SIGKILL');
      const killedAt = Date.now();
      while (!output().includes('redis restarted') && Date.now() - killedAt < 30_000) await new Promise((r) => setTimeout(r, 100));
      expect(output()).toMatch(/redis exited unexpectedly \(code null\); restarting in 1 s/);
      expect(output()).toContain('redis restarted');
      const redisAfter = recordedPids(dataDir).get('redis.pid');
      expect(redisAfter).toBeDefined();
      expect(redisAfter).not.toBe(redisBefore);
      servicePids.push(redisAfter!);
      let readyStatus = 0;
      for (const until = Date.now() + 15_000; readyStatus !== 200 && Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
        readyStatus = (await fetch(`http://127.0.0.1:${api}/ready`)).status;
      }
      expect(readyStatus).toBe(200);
      expect(output()).not.toContain('stopping the stack');

      process.kill(-child.pid!, 'SIGINT');
      expect(await dev.exited).toBe(0);
      expect(output()).toContain('stopped; nothing left running');
      for (const pid of [...servicePids, child.pid!]) expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(groupMembers(child.pid!)).toEqual([]);
    } catch (err) {
      // What the stack printed is the only record of why it did not come up or go down cleanly.
      process.stderr.write(`--- npm run dev output ---\n${output()}\n`);
      throw err;
    } finally {
      cleanUp(dev);
    }
  }, 260_000);

  it('stops a service that is still starting when Ctrl-C comes during start-up', async () => {
    const dev = await startDev();
    const { child, dataDir, output } = dev;
    // Every pid any pid file named, while the stack started and stopped: none may outlive the stop.
    const seen = new Map<string, number>();
    const record = () => recordedPids(dataDir).forEach((pid, file) => seen.set(file, pid));
    try {
      const deadline = Date.now() + 120_000;
      while (seen.size === 0 && Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`npm run dev exited early:\n${output()}`);
        record();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(seen.size).toBeGreaterThan(0);
      // The first service has just been spawned and is (almost always) still waiting for its port.
      process.kill(-child.pid!, 'SIGINT');
      let code: number | null | undefined;
      void dev.exited.then((c) => (code = c));
      while (code === undefined) {
        record();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(code).toBe(0);
      expect(output()).toContain('stopped; nothing left running');
      expect(output()).not.toContain('PatchProof dev stack is up');
      for (const pid of [...seen.values(), child.pid!]) expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(recordedPids(dataDir).size).toBe(0);
      expect(groupMembers(child.pid!)).toEqual([]);
    } catch (err) {
      process.stderr.write(`--- npm run dev output ---\n${output()}\n`);
      throw err;
    } finally {
      cleanUp(dev, seen.values());
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
