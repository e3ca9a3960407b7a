// Every workflow the worker registers. The bundler starts here, so only workflow-safe modules may be imported.
export { systemCheckWorkflow } from './system/systemCheck';
export { utxoTopUpWorkflow } from './pool/topUp';
export { utxoSweepWorkflow } from './pool/sweep';
export { utxoSyncWorkflow, utxoReconcileWorkflow, scheduledPoolOperationWorkflow } from './pool/maintenance';
export { emailDeliveryWorkflow } from './email/emailDelivery';
export { registrationWorkflow } from './registration/registration';
export { bulkRegistrationWorkflow } from './bulkRegistration/bulkRegistration';
export { kmsRotationWorkflow } from './rotation/kmsRotation';
export { jwtKeyRotationWorkflow } from './rotation/jwtRotation';
export { anchorBatcherWorkflow } from './anchoring/batcher';
export { anchorBatchWorkflow } from './anchoring/batch';
export { transferWorkflow } from './transfer/transfer';
export { claimWorkflow } from './claim/claim';
export { backupWorkflow, restoreCheckWorkflow } from './backup/backup';
export { issuerKeyRevocationWorkflow } from './issuerKeys/revocation';
export { chainFollowerWorkflow } from './chainFollower/follower';
export { historyArchiveWorkflow } from './history/archive';
export { webhookDeliveryWorkflow } from './webhooks/delivery';
