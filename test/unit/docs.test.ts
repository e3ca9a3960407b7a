import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openApiDocumentForDocs } from '../../api/openapiDocument';
import { ENV_VARIABLE_NAMES } from '../../src/config';
import { DEV_STACK_VARIABLE_NAMES } from '../../src/config/devStack';

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

const REPO_DIRECTORIES = ['src', 'workflows', 'activities', 'api', 'ops', 'test', 'workers', 'grafana', 'docs'];

/** Every repo path a Markdown text names in backticks, on its own (`src/a.ts`) or inside a command (`npx tsx test/b.ts`). */
function backtickedRepoPaths(markdown: string): string[] {
  const pathInCode = new RegExp(`(?:^|[\\s(])((?:${REPO_DIRECTORIES.join('|')})/[^\\s)]*)`, 'g');
  const paths = new Set<string>();
  for (const [, code] of markdown.matchAll(/`([^`\n]+)`/g)) {
    for (const [, named] of code!.matchAll(pathInCode)) paths.add(named!.replace(/[.,;:]+$/, ''));
  }
  return [...paths];
}

/** Files under the repo directories, relative and with forward slashes; node_modules left out. */
function repoFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
      const relative = `${dir}/${entry.name}`;
      if (entry.name === 'node_modules') return [];
      return entry.isDirectory() ? walk(relative) : [relative];
    });
  return REPO_DIRECTORIES.flatMap(walk);
}

/** A path exists as written; a glob (`*`, `**`) or a placeholder segment (`<domain>`) must match at least one file. */
function pathExists(named: string, files: () => string[]): boolean {
  if (!/[*<]/.test(named)) return existsSync(path.join(root, named));
  const pattern = named
    .replace(/\/$/, '')
    .split(/(\*\*|\*|<[^>]+>)/)
    .map((part) => (part === '**' ? '.*' : part === '*' || part.startsWith('<') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  const matcher = new RegExp(`^${pattern}(?:/.*)?$`);
  return files().some((file) => matcher.test(file));
}

describe('documentation stays in step with the code', () => {
  it('documents every environment variable the configuration reads', () => {
    const doc = read('docs/CONFIGURATION.md');
    const undocumented = [...ENV_VARIABLE_NAMES, ...DEV_STACK_VARIABLE_NAMES].filter((name) => !doc.includes(`\`${name}\``));
    expect(undocumented).toEqual([]);
  });

  // A documented variable that nothing reads misleads operators. The other direction of the test above.
  it('reads every variable that docs/CONFIGURATION.md lists in its tables', () => {
    const known = new Set<string>([...ENV_VARIABLE_NAMES, ...DEV_STACK_VARIABLE_NAMES]);
    const rows = read('docs/CONFIGURATION.md')
      .split('\n')
      .filter((line) => line.startsWith('|'));
    const listed = new Set<string>();
    for (const row of rows) {
      const [, variableCell = '', ...rest] = row.split('|');
      // The Variable column names variables (`A` or `A` (alias `B`)); elsewhere a backticked NAME_WITH_UNDERSCORE is one.
      for (const m of variableCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) listed.add(m[1]!);
      for (const m of rest.join('|').matchAll(/`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`/g)) listed.add(m[1]!);
    }
    expect(listed.size).toBeGreaterThan(100);
    expect([...listed].filter((name) => !known.has(name))).toEqual([]);
  });

  it('has no sentences about things that are not built, in README.md and docs/', () => {
    const files = [
      'README.md',
      ...readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const stale = /not built yet|none yet|do not exist yet/i;
    const found = files.flatMap((file) =>
      read(file)
        .split('\n')
        .map((line, i) => ({ at: `${file}:${i + 1}`, line }))
        .filter(({ line }) => stale.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });

  it('names only paths that exist in docs/ARCHITECTURE.md', () => {
    let files: string[] | undefined;
    const listFiles = () => (files ??= repoFiles());
    const named = backtickedRepoPaths(read('docs/ARCHITECTURE.md'));
    expect(named.length).toBeGreaterThan(50);
    expect(named.filter((p) => !pathExists(p, listFiles))).toEqual([]);
  });

  it('finds the repo paths in backticks, inside commands too, and notices one that does not exist', () => {
    const named = backtickedRepoPaths('See `src/config/index.ts`, run `npx tsx test/bench/signing.ts [rounds]`; not `dist/api/server.js`.');
    expect(named).toEqual(['src/config/index.ts', 'test/bench/signing.ts']);
    expect(pathExists('src/config/nowhere.ts', repoFiles)).toBe(false);
    expect(pathExists('workflows/<domain>/shared.ts', repoFiles)).toBe(true);
    expect(pathExists('test/unit/*.test.ts', repoFiles)).toBe(true);
    expect(pathExists('test/unit/nowhere/**', repoFiles)).toBe(false);
  });

  it('publishes the OpenAPI document the API serves (regenerate with `npm run openapi`)', () => {
    expect(JSON.parse(read('docs/openapi.json'))).toEqual(JSON.parse(JSON.stringify(openApiDocumentForDocs())));
  });

  it('keeps CI on exactly the README test command', () => {
    expect(read('README.md')).toContain('npm test');
    expect(read('README.md')).toContain('npm run dev');
    const ciCommands = read('.ci/run')
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('#') && !line.startsWith('set ') && !line.startsWith('cd '));
    expect(ciCommands).toEqual(['npm test']);
  });
});
