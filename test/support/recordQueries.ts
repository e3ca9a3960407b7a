import path from 'node:path';
import { recordQueryShapes } from './queryShapes';
import { testEnv } from './testEnv';

// Every integration test file records the shapes of the queries its code sends; globalTeardown checks them against
// the declared indexes (test/support/queryShapes.ts).
recordQueryShapes(path.join(testEnv('scratchDir'), 'query-shapes'));
