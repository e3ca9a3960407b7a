import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { itWithTool, requireTool, toolsRequired } from '../../support/requiredTools';
import { parse as parseYaml } from 'yaml';
import { NODE_OPTIONS } from '../../../ops/deploy/nodeOptions';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SCRIPTS = ['ops/deploy.sh', 'ops/rollback.sh', 'ops/deploy/lib.sh', 'ops/worker-deployment.sh'];
const UNITS_DIR = path.join(ROOT, 'ops/deploy/systemd');

function which(bin: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(ROOT, script), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe('deploy scripts', () => {
  const shellcheck = which('shellcheck');
  itWithTool(shellcheck)('pass shellcheck', () => {
    const result = spawnSync(requireTool(shellcheck, 'shellcheck'), ['-x', '--severity=style', ...SCRIPTS], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
  if (!shellcheck && !toolsRequired) {
    it('pass shellcheck (skipped: shellcheck is not installed; `sudo apt-get install shellcheck` or npm run provision -- --for test)', () => {
      expect(shellcheck).toBeUndefined();
    });
  }

  it('print their usage with --help and exit 2 on an unknown option, without prompting', async () => {
    for (const script of ['ops/deploy.sh', 'ops/rollback.sh']) {
      const help = await run(script, ['--help']);
      expect(help.code).toBe(0);
      expect(help.out).toContain(`Usage: ${script}`);
      expect(help.out).toContain('--dry-run');
      const bad = await run(script, ['--frobnicate']);
      expect(bad.code).toBe(2);
    }
  });

  it('plan build, bundle, indexes, switch, restarts and the health gate in that order in a dry run', async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'deploy-dry-'));
    const { code, out } = await run('ops/deploy.sh', ['--dry-run', '--home', home, '--ref', 'HEAD']);
    expect(code).toBe(0);
    const order = [
      'git -C',
      'npm ci',
      'npm run build',
      'dist/workflow-bundle.js',
      'ensure-indexes',
      'ln -sfn',
      'restart patchproof-worker.service',
      'restart patchproof-email-worker.service',
      'restart patchproof-api.service',
      '/ready',
      '/api/svd/canary',
      'system-check',
    ];
    const positions = order.map((step) => out.indexOf(step));
    for (const [i, p] of positions.entries()) expect([order[i], p]).not.toEqual([order[i], -1]);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    // A dry run changes nothing.
    expect(readdirSync(home)).toEqual([]);
  });

  describe('against a release layout and a stand-in API', () => {
    let server: Server;
    let healthy = true;
    let apiUrl: string;
    let home: string;
    const canaryKeys: (string | undefined)[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/api/svd/canary') canaryKeys.push(req.headers['x-api-key'] as string | undefined);
        res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end('{}');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    beforeEach(() => {
      home = mkdtempSync(path.join(tmpdir(), 'deploy-home-'));
      for (const sha of ['aaa111', 'bbb222']) {
        mkdirSync(path.join(home, 'releases', sha), { recursive: true });
        writeFileSync(path.join(home, 'releases', sha, 'release.env'), `DEPLOY_SHA=${sha}\n`);
        writeFileSync(path.join(home, 'releases', sha, '.release-built'), '');
      }
      symlinkSync('releases/aaa111', path.join(home, 'current'));
      writeFileSync(path.join(home, 'patchproof.env'), 'NODE_ENV=production\nAPI_KEY=deploy-test-key-0123456789abcdef0123\n');
    });

    // systemctl and the CLI are replaced by commands that log what they were asked to do.
    const stubs = () => {
      const logFile = path.join(home, 'calls.log');
      return {
        env: {
          SYSTEMCTL: `${path.join(ROOT, 'test/unit/deploy/record-call.sh')} ${logFile} systemctl`,
          PATCHPROOF_CLI: `${path.join(ROOT, 'test/unit/deploy/record-call.sh')} ${logFile} patchproof`,
        },
        calls: () => readFileSync(logFile, 'utf8').trim().split('\n'),
      };
    };
    const args = () => ['--home', home, '--env-file', path.join(home, 'patchproof.env'), '--api-url', apiUrl, '--ready-timeout', '3'];

    it('switches to the new release when it becomes ready and the canary passes, and remembers the old one', async () => {
      healthy = true;
      const { env, calls } = stubs();
      const result = await run('ops/deploy.sh', ['--release', 'bbb222', ...args()], env);
      expect(result.out).toContain('deployed bbb222');
      expect(result.code).toBe(0);
      expect(readlinkSync(path.join(home, 'current'))).toBe('releases/bbb222');
      expect(readFileSync(path.join(home, 'previous'), 'utf8').trim()).toBe('aaa111');
      expect(calls()).toEqual([
        'patchproof ensure-indexes',
        'systemctl restart patchproof-worker.service',
        'systemctl restart patchproof-email-worker.service',
        'systemctl restart patchproof-api.service',
        'patchproof system-check',
      ]);
      // The canary got the key from the env file as a header.
      expect(canaryKeys.at(-1)).toBe('deploy-test-key-0123456789abcdef0123');
    });

    it('rolls back to the previous release when the new one never becomes ready', async () => {
      healthy = false;
      const { env } = stubs();
      const result = await run('ops/deploy.sh', ['--release', 'bbb222', ...args()], env);
      expect(result.code).toBe(1);
      expect(result.out).toContain('rolling back to aaa111');
      expect(readlinkSync(path.join(home, 'current'))).toBe('releases/aaa111');
      // The stand-in API stays unhealthy, so the rollback reports that too instead of claiming success.
      expect(result.out).toContain('rollback to aaa111 failed too');
    });

    it('with versioned workers, starts the release in the idle slot beside the current one and makes its version current', async () => {
      healthy = true;
      const { env, calls } = stubs();
      mkdirSync(path.join(home, 'slots'));
      symlinkSync('../releases/aaa111', path.join(home, 'slots', 'blue'));
      const deployment = { ...env, WORKER_DEPLOYMENT_CLI: env.PATCHPROOF_CLI.replace(/patchproof$/, 'worker-deployment') };
      const result = await run('ops/deploy.sh', ['--release', 'bbb222', '--versioned-workers', ...args()], deployment);
      expect(result.out).toContain('deployed bbb222');
      expect(result.code).toBe(0);
      // Release aaa111's workers keep running in slot blue for the workflows pinned to it.
      expect(readlinkSync(path.join(home, 'slots', 'blue'))).toBe('../releases/aaa111');
      expect(readlinkSync(path.join(home, 'slots', 'green'))).toBe('../releases/bbb222');
      expect(calls()).toEqual([
        'patchproof ensure-indexes',
        'systemctl restart patchproof-worker@green.service',
        'systemctl restart patchproof-email-worker@green.service',
        'worker-deployment promote bbb222',
        'systemctl restart patchproof-api.service',
        'patchproof system-check',
      ]);
    });

    it('with versioned workers, refuses to reuse a slot whose release has not drained, and changes nothing', async () => {
      healthy = true;
      const { env, calls } = stubs();
      mkdirSync(path.join(home, 'slots'));
      symlinkSync('../releases/aaa111', path.join(home, 'slots', 'blue'));
      symlinkSync('../releases/ccc333', path.join(home, 'slots', 'green'));
      const draining = path.join(home, 'draining.sh');
      writeFileSync(
        draining,
        `#!/usr/bin/env bash\nprintf 'worker-deployment %s\\n' "$*" >>${path.join(home, 'calls.log')}\n[[ "$1" != drain-status ]]\n`,
        {
          mode: 0o755,
        },
      );
      const result = await run('ops/deploy.sh', ['--release', 'bbb222', '--versioned-workers', ...args()], {
        ...env,
        WORKER_DEPLOYMENT_CLI: draining,
      });
      expect(result.code).toBe(1);
      expect(result.out).toContain('slot green still runs ccc333, which is not drained');
      expect(readlinkSync(path.join(home, 'current'))).toBe('releases/aaa111');
      expect(calls()).toEqual(['patchproof ensure-indexes', 'worker-deployment drain-status ccc333']);
    });

    it('rolls back by hand to the recorded previous release', async () => {
      healthy = true;
      const { env } = stubs();
      expect((await run('ops/deploy.sh', ['--release', 'bbb222', ...args()], env)).code).toBe(0);
      const back = await run('ops/rollback.sh', args(), env);
      expect(back.out).toContain('rolled back to aaa111');
      expect(back.code).toBe(0);
      expect(readlinkSync(path.join(home, 'current'))).toBe('releases/aaa111');
      const list = await run('ops/rollback.sh', ['--list', '--home', home]);
      expect(list.out).toMatch(/^\* aaa111$/m);
      expect(list.out).toMatch(/^ {2}bbb222$/m);
    });
  });
});

describe('deploy units and configuration', () => {
  const unitFiles = readdirSync(UNITS_DIR).filter((f) => f.endsWith('.service'));
  const parseUnit = (file: string): Record<string, Record<string, string[]>> => {
    const sections: Record<string, Record<string, string[]>> = {};
    let current = '';
    for (const raw of readFileSync(path.join(UNITS_DIR, file), 'utf8').split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const section = /^\[(\w+)\]$/.exec(line);
      if (section) {
        current = section[1]!;
        sections[current] = {};
        continue;
      }
      const [key, ...value] = line.split('=');
      expect(current).not.toBe('');
      (sections[current]![key!] ??= []).push(value.join('='));
    }
    return sections;
  };

  it('has a unit for the API, the main worker and the email worker, each running an npm start script', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(unitFiles.sort()).toEqual([
      'patchproof-api.service',
      'patchproof-email-worker.service',
      'patchproof-email-worker@.service',
      'patchproof-worker.service',
      'patchproof-worker@.service',
    ]);
    const starts = [pkg.scripts['start:api'], pkg.scripts['start:worker'], pkg.scripts['start:worker:email']];
    for (const file of unitFiles) {
      const unit = parseUnit(file);
      // Node flags come as NODE_OPTIONS in a unit and as arguments in an npm script.
      const nodeOptions = (unit.Service!.Environment ?? []).map((e) => /^"NODE_OPTIONS=(.*)"$/.exec(e)?.[1]).find(Boolean);
      const exec = unit.Service!.ExecStart![0]!.replace('/usr/bin/node', nodeOptions ? `node ${nodeOptions}` : 'node');
      expect(starts).toContain(exec);
      if (file === 'patchproof-api.service') expect(nodeOptions).toBe(NODE_OPTIONS.api);
      expect(unit.Service!.EnvironmentFile).toContain('/etc/patchproof/patchproof.env');
      expect(unit.Service!.Restart).toEqual(['on-failure']);
      expect(unit.Service!.User).toEqual(['patchproof']);
      for (const hardening of ['NoNewPrivileges', 'ProtectSystem', 'PrivateTmp', 'ProtectHome', 'CapabilityBoundingSet']) {
        expect([file, hardening, unit.Service![hardening]]).not.toEqual([file, hardening, undefined]);
      }
      expect(unit.Install!.WantedBy).toEqual(['multi-user.target']);
    }
  });

  it('gives the workers a stop timeout longer than their forced shutdown (WORKER_SHUTDOWN_FORCE_MS, 60 s)', () => {
    for (const file of ['patchproof-worker.service', 'patchproof-email-worker.service']) {
      expect(Number(parseUnit(file).Service!.TimeoutStopSec![0])).toBeGreaterThan(60);
    }
  });

  const systemdAnalyze = which('systemd-analyze');
  (systemdAnalyze ? it : it.skip)('passes systemd-analyze verify', () => {
    const result = spawnSync(systemdAnalyze!, ['verify', ...unitFiles.map((f) => path.join(UNITS_DIR, f))], { encoding: 'utf8' });
    // Only the unit files' own problems count; a host without the patchproof user or node is not a unit error.
    const own = (result.stderr + result.stdout)
      .split('\n')
      .filter((l) => l.includes('patchproof-') && /Unknown|Invalid|Failed to parse|bad/i.test(l));
    expect(own).toEqual([]);
  });

  it('blocks /internal and /metrics at the edge and serves only over TLS', () => {
    const conf = readFileSync(path.join(ROOT, 'ops/deploy/nginx/patchproof.conf'), 'utf8');
    expect(conf).toMatch(/location \^~ \/internal \{ return 404; \}/);
    expect(conf).toMatch(/location = \/metrics \{ return 404; \}/);
    expect(conf).toMatch(/listen 443 ssl( http2)?;/);
    expect(conf).toMatch(/return 301 https:\/\//);
    expect(conf).toMatch(/proxy_pass http:\/\/patchproof_api;/);
    expect(conf).toMatch(/server 127\.0\.0\.1:3001;/);
  });

  it('has a docker-compose stack with Temporal on PostgreSQL, MongoDB, Redis, Prometheus, Grafana and the three services', () => {
    const compose = parseYaml(readFileSync(path.join(ROOT, 'ops/deploy/docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; depends_on?: unknown }>;
    };
    const services = compose.services;
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'email-worker', 'grafana', 'mongo', 'postgresql', 'prometheus', 'redis', 'temporal', 'temporal-ui', 'worker'].sort(),
    );
    expect(services.temporal!.environment!.DB).toBe('postgres12');
    expect(services.api!.command).toEqual(['node', 'dist/api/server.js']);
    expect(services.api!.environment!.NODE_OPTIONS).toBe(NODE_OPTIONS.api);
    expect(services.worker!.command).toEqual(['node', 'dist/workers/main.js']);
    expect(services['email-worker']!.command).toEqual(['node', 'dist/workers/email.js']);
    // The merged anchor gives every service the same connections.
    for (const name of ['api', 'worker', 'email-worker']) expect(services[name]!.environment!.TEMPORAL_ADDRESS).toBe('temporal:7233');
    const prometheus = parseYaml(readFileSync(path.join(ROOT, 'ops/deploy/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prometheus.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    expect(targets).toEqual(expect.arrayContaining(['api:3001', 'worker:9465', 'worker:9464']));
  });

  it('rotates the remaining log files', () => {
    const conf = readFileSync(path.join(ROOT, 'ops/deploy/logrotate/patchproof'), 'utf8');
    expect(conf).toMatch(/\/var\/log\/patchproof\/\*\.log/);
    expect(conf).toMatch(/rotate \d+/);
    const logrotate = which('logrotate');
    if (logrotate) {
      const state = path.join(mkdtempSync(path.join(tmpdir(), 'logrotate-')), 'state');
      const result = spawnSync(logrotate, ['--debug', '--state', state, path.join(ROOT, 'ops/deploy/logrotate/patchproof')], {
        encoding: 'utf8',
      });
      expect(result.stderr).not.toMatch(/error/i);
    }
  });
});
