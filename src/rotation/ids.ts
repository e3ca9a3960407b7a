/** Workflow ids of the rotation domain; no other code concatenates these. */

export const KMS_KEY_PURPOSES = ['issuer', 'funding', 'svd'] as const;
export type KmsKeyPurpose = (typeof KMS_KEY_PURPOSES)[number];

/** Every purpose the keyring tracks: the three KMS keys and the JWT signing keyring. */
export type KeyPurpose = KmsKeyPurpose | 'jwt';

export function isKmsKeyPurpose(value: string): value is KmsKeyPurpose {
  return (KMS_KEY_PURPOSES as readonly string[]).includes(value);
}

/** One rotation per purpose at a time: a second start while one runs finds this id taken. */
export function kmsRotationWorkflowId(purpose: KmsKeyPurpose): string {
  if (!isKmsKeyPurpose(purpose)) throw new RangeError(`unknown key purpose ${String(purpose)}`);
  return `kms-rotation-${purpose}`;
}

export const JWT_ROTATION_WORKFLOW_ID = 'jwt-rotation';

export function isRotationWorkflowId(workflowId: string): boolean {
  return workflowId === JWT_ROTATION_WORKFLOW_ID || KMS_KEY_PURPOSES.some((p) => workflowId === `kms-rotation-${p}`);
}

/** A KMS key identifier as the KMS contract and the pool accept it: a name, optionally `@<version>`. */
export const KEY_IDENTIFIER_PATTERN = /^[A-Za-z0-9._:-]{1,64}(@[1-9]\d{0,8})?$/;
/** JWT kids (same rule as JWT_KEYS). */
export const JWT_KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
