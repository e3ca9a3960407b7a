import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { openApiDocumentForDocs } from './openapiDocument';

/** Writes docs/openapi.json (`npm run openapi`); a test fails when the committed file is stale. */
const outFile = path.resolve(__dirname, '..', 'docs', 'openapi.json');
writeFileSync(outFile, `${JSON.stringify(openApiDocumentForDocs(), null, 2)}\n`);
process.stdout.write(`wrote ${path.relative(process.cwd(), outFile)}\n`);
