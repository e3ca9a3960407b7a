/** Workflow-ID builders of the email domain; no other code concatenates these IDs. */

const MESSAGE_ID = /^[A-Za-z0-9-]{8,64}$/;

export function isValidMessageId(messageId: string): boolean {
  return MESSAGE_ID.test(messageId);
}

/** One delivery workflow per message: a retried start for the same message never sends it twice. */
export function emailDeliveryWorkflowId(messageId: string): string {
  if (!isValidMessageId(messageId)) throw new RangeError('messageId must be 8–64 characters of A–Z, a–z, 0–9 or -');
  return `email-delivery-${messageId}`;
}
