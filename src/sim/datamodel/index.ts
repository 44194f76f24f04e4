import type { SimClass } from '../state.js';
import { HOST_SCHEMA, POOL_SCHEMA } from './host.js';
import { NETWORK_SCHEMA, VIF_SCHEMA } from './network.js';
import type { ClassSchema } from './schema.js';
import { VM_SCHEMA } from './vm.js';

export const SCHEMAS: Readonly<Record<SimClass, ClassSchema>> = { pool: POOL_SCHEMA, host: HOST_SCHEMA, network: NETWORK_SCHEMA, VIF: VIF_SCHEMA, VM: VM_SCHEMA };
export { relatedRef, type ClassSchema } from './schema.js';
export { VM_RUNNING_FIELDS } from './vm.js';
export { VIF_ATTACHED_OPERATIONS, VIF_DETACHED_OPERATIONS } from './network.js';
