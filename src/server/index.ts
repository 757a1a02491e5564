export { dataLayout } from '../core/index.ts';
export { type Platform, type PlatformOptions, startPlatform } from './platform.ts';
