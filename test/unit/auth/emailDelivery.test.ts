import { isPermanentSmtpError, renderEmail } from '../../../activities/email/delivery';
import { emailDeliveryWorkflowId } from '../../../src/email/ids';

describe('email delivery', () => {
  it('renders the code and its expiry into the message', () => {
    const rendered = renderEmail({ kind: 'verification-code', code: '042917' });
    expect(rendered.subject).toBe('Your PatchProof verification code');
    expect(rendered.text).toContain('042917');
    expect(rendered.text).toContain('15 minutes');
    expect(rendered.html).toContain('<strong>042917</strong>');
  });

  it('treats SMTP 5xx and envelope errors as permanent, 4xx and network errors as transient', () => {
    expect(isPermanentSmtpError({ responseCode: 550 })).toBe(true);
    expect(isPermanentSmtpError({ responseCode: 554, code: 'EMESSAGE' })).toBe(true);
    expect(isPermanentSmtpError({ responseCode: 451, code: 'EENVELOPE' })).toBe(false);
    expect(isPermanentSmtpError({ responseCode: 421 })).toBe(false);
    expect(isPermanentSmtpError({ code: 'ECONNREFUSED' })).toBe(false);
    expect(isPermanentSmtpError({ code: 'EENVELOPE' })).toBe(true);
  });

  it('builds one workflow id per message and refuses ids that could smuggle data', () => {
    expect(emailDeliveryWorkflowId('0b6f3c1e-9d7a-4c1e-8a3b-2f5d6e7a8b9c')).toBe('email-delivery-0b6f3c1e-9d7a-4c1e-8a3b-2f5d6e7a8b9c');
    expect(() => emailDeliveryWorkflowId('alice@example.com')).toThrow(RangeError);
  });
});
