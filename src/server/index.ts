export { dataLayout } from '../core/index.ts';
export { formatReport, runDemo } from './demo/index.ts';
export { type Platform, type PlatformOptions, startPlatform } from './platform.ts';
