/** Workflow-ID builders of the registration domain; no other code concatenates these IDs. */

/** A uid_tag_id: the identifier printed on the patch. Restricted so it is safe in ids, URLs and queries. */
export const UID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function isValidUid(uid: string): boolean {
  return UID_PATTERN.test(uid);
}

/** One registration per uid, for ever: the id is the lock. */
export function registrationWorkflowId(uid: string): string {
  if (!isValidUid(uid)) throw new RangeError('uid must be 1–128 characters of A–Z, a–z, 0–9, . _ : - (starting alphanumeric)');
  return `registration-${uid}`;
}

/** `registration-<uid>`; the API documents this pattern for the id it answers with. */
export const REGISTRATION_ID_PATTERN = /^registration-[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function uidFromRegistrationId(registrationId: string): string | null {
  const uid = registrationId.startsWith('registration-') ? registrationId.slice('registration-'.length) : '';
  return isValidUid(uid) ? uid : null;
}
