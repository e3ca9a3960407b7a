/**
 * The Node flags each production process runs with, in one place: the systemd units and docker-compose set them as
 * NODE_OPTIONS, `npm run start:api` and `npm start` pass them, and the benches run the built code with them
 * (test/unit/deploy/deploy.test.ts keeps the copies equal).
 *
 * The API's live heap is ~50 MB. Left to V8's defaults (a heap limit in GBs, 16 MB semi-spaces) it lets the old
 * generation fill with garbage promoted from requests in flight before collecting (RSS ~235 MB after 20 s of load);
 * a 192 MB old space and 4 MB semi-spaces make it collect sooner (RSS ~145 MB under the same load). 192 MB leaves room
 * for BATCH_MAX_CONCURRENT (2) full batches of 10,000 items being read at once: a 16 MB batch costs ~100 MB of heap
 * while it is parsed and checked, and 96 MB was not enough for one (the process ran out of heap).
 */
export const NODE_OPTIONS = {
  api: '--max-old-space-size=192 --max-semi-space-size=4',
} as const;

/** The flags as arguments for `node`. */
export const nodeArgs = (process: keyof typeof NODE_OPTIONS): string[] => NODE_OPTIONS[process].split(' ');
