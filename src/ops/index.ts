/**
 * The op registry: one entry per operator, the single place to add one. See registry.ts for the
 * table, types.ts for what an entry says, activation.ts for reading an activation's parameters.
 */
export { opInfo, nodeOp, registeredOps, registerOp, unregisterOp, blockActivations } from './registry';
export { readActivation, activationSpec, activationNodeSpec } from './activation';
export type { ActivationParams } from './activation';
export type { ActivationSpec, ChannelFlow, MacContext, MacRule, OpInfo, OpSpec, ShapeRule } from './types';
