import { testServerAptPackages } from '../../../ops/dev-stack/provision';

describe('Java test server provisioning', () => {
  it('installs a Java runtime together with Maven when neither is on PATH', () => {
    expect(testServerAptPackages({ java: false, mvn: false })).toEqual(['default-jre-headless', 'maven']);
  });

  it('installs only what is missing', () => {
    expect(testServerAptPackages({ java: false, mvn: true })).toEqual(['default-jre-headless']);
    expect(testServerAptPackages({ java: true, mvn: false })).toEqual(['maven']);
  });

  it('installs nothing when java and mvn are both there', () => {
    expect(testServerAptPackages({ java: true, mvn: true })).toEqual([]);
  });
});
