import { loadConfig } from '../../../src/config';

describe('WhatsOnChain client configuration', () => {
  it('limits requests to 3 a second without an API key and 20 with one, unless set explicitly', () => {
    expect(loadConfig({}).woc.requestsPerSecond).toBe(3);
    expect(loadConfig({ WOC_API_KEY: 'woc-key-0123456789' }).woc.requestsPerSecond).toBe(20);
    expect(loadConfig({ WOC_API_KEY: 'woc-key-0123456789', WOC_REQUESTS_PER_SECOND: '7' }).woc.requestsPerSecond).toBe(7);
  });

  it('drops trailing slashes from the base URL so paths join cleanly', () => {
    expect(loadConfig({ WOC_BASE_URL: 'http://127.0.0.1:8091//' }).woc.baseUrl).toBe('http://127.0.0.1:8091');
  });
});
