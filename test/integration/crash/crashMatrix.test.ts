import { type Boundary, type CellOutcome, boundaryLabel, formatMatrix, runScenarioRow } from '../../support/crashMatrix';
import { SCENARIOS } from '../../support/crashScenarios';

/**
 * The crash matrix (docs/TESTING.md): each workflow kind run once per activity boundary, its worker SIGKILLed just
 * after the activity starts or just after it completes, then finished by a fresh worker. Every cell must end with
 * the workflow completed once, no double spend, exactly the expected transactions, no reservation left, each record
 * once.
 *
 * In `npm test` a bounded part runs (about three minutes): two workflow kinds, one boundary each, drawn with a seed
 * it prints (CRASH_MATRIX_SEED repeats a draw). `npm run crash-matrix` (CRASH_MATRIX=full) runs every boundary of
 * every kind. CRASH_MATRIX_KINDS names the kinds either way (comma-separated, e.g. `registration,transfer`), and
 * CRASH_MATRIX_ACTIVITIES the activities whose boundaries run (e.g. `completeBatch`).
 */
const full = process.env.CRASH_MATRIX === 'full';
const seed = Number(process.env.CRASH_MATRIX_SEED ?? Math.floor(Math.random() * 2 ** 31));
const kinds = process.env.CRASH_MATRIX_KINDS?.split(',').map((k) => k.trim());
const activities = process.env.CRASH_MATRIX_ACTIVITIES?.split(',').map((a) => a.trim());
const BOUNDED_KINDS = 2;

/** A small deterministic generator (mulberry32), so a seed names one draw. */
function random(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const draw = random(seed);
const named = SCENARIOS.filter((s) => !kinds || kinds.includes(s.kind));
/** Fisher–Yates with the seeded generator. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
const scenarios = full || kinds ? named : shuffled(named).slice(0, BOUNDED_KINDS);

describe(`crash matrix (${full ? 'every boundary' : `one boundary of each kind drawn, seed ${seed}`})`, () => {
  const cells: CellOutcome[] = [];

  beforeAll(() => {
    process.stderr.write(`[crash-matrix] ${full ? 'full matrix' : `seed ${seed} (CRASH_MATRIX_SEED=${seed} repeats this draw)`}\n`);
  });
  afterAll(() => {
    if (cells.length > 0) process.stdout.write(`\n${formatMatrix(cells)}\n\n`);
  });

  it.each(scenarios.map((s) => [s.kind, s]))(
    '%s: every crashed run completes once, with no double spend, leaked reservation or duplicate record',
    async (_kind, scenario) => {
      const pick = (all: Boundary[]) => {
        const boundaries = activities ? all.filter((b) => activities.includes(b.activityType)) : all;
        return full || boundaries.length === 0 ? boundaries : [boundaries[Math.floor(draw() * boundaries.length)]!];
      };
      const row = await runScenarioRow(scenario, {
        pick,
        onCell: (cell) => {
          cells.push(cell);
          process.stderr.write(
            `[crash-matrix] ${cell.kind} ${boundaryLabel(cell.boundary)}: ${cell.outcome} (${cell.seconds}s: ${cell.steps}) ${cell.problems.join('; ')}\n`,
          );
        },
      });
      expect(row.boundaries.length).toBeGreaterThan(0);
      expect(
        row.cells.filter((c) => c.outcome !== 'ok').map((c) => `${boundaryLabel(c.boundary)}: ${c.outcome} ${c.problems.join('; ')}`),
      ).toEqual([]);
    },
    full ? 3_600_000 : 600_000,
  );
});
