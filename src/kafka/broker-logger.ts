import type { BrokerLogger } from './broker.ts';

/** A logger that drops everything (tests and embedded use that log elsewhere). */
export const quietLogger: BrokerLogger = { info() {}, warn() {}, error() {} };
