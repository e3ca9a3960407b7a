/**
 * The Node flags each production process runs with, in one place: the systemd units and docker-compose set them as
 * NODE_OPTIONS, `npm run start:api` and `npm start` pass them, and the benches run the built code with them
 * (test/unit/deploy/deploy.test.ts keeps the copies equal).
 *
 * The API's live heap is ~50 MB. Left to itself V8 lets the old generation fill with garbage promoted from requests
 * in flight (to ~145 MB used under load, RSS ~235 MB) before it collects; a 96 MB old space and 4 MB semi-spaces keep
 * RSS near 140 MB under the same load. Raise the cap with NODE_OPTIONS (a systemd drop-in) if a deployment's batches or
 * caches need more; the process then logs no error, it just uses more memory.
 */
export const NODE_OPTIONS = {
  api: '--max-old-space-size=96 --max-semi-space-size=4',
} as const;

/** The flags as arguments for `node`. */
export const nodeArgs = (process: keyof typeof NODE_OPTIONS): string[] => NODE_OPTIONS[process].split(' ');
