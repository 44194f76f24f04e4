export { startSimulator } from './simulator.js';
export type { LocalVif, SimCounters, SimFaults, SimFaultSettings, SimPool, Simulator, SimulatorOptions } from './simulator.js';
export { LifecycleError, SimLifecycle } from './lifecycle.js';
export type { PortHook, PortHooks, PortInfo } from './lifecycle.js';
export { FixtureError, generateFixture, parseFixture, parseGenerateSpec } from './fixture.js';
export type { Fixture, FixtureHost, FixtureNetwork, FixtureVif, FixtureVm } from './fixture.js';
export { SimState, SimStateError, SIM_CLASSES } from './state.js';
export type { AddNetwork, AddVif, AddVm, Created, SimClass, UpdateVm } from './state.js';
