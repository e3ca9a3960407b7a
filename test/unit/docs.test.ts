import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openApiDocumentForDocs } from '../../api/openapiDocument';
import { ENV_VARIABLE_NAMES } from '../../src/config';
import { DEV_STACK_VARIABLE_NAMES } from '../../src/config/devStack';

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

describe('documentation stays in step with the code', () => {
  it('documents every environment variable the configuration reads', () => {
    const doc = read('docs/CONFIGURATION.md');
    const undocumented = [...ENV_VARIABLE_NAMES, ...DEV_STACK_VARIABLE_NAMES].filter((name) => !doc.includes(`\`${name}\``));
    expect(undocumented).toEqual([]);
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
