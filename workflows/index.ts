// Every workflow the worker registers. The bundler starts here, so only workflow-safe modules may be imported.
export { systemCheckWorkflow } from './system/systemCheck';
export { emailDeliveryWorkflow } from './email/emailDelivery';
