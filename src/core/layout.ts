import path from 'node:path';

/** Where each part keeps its data inside one data directory. The CLI and the server agree through this. */
export function dataLayout(dataDir: string): { root: string; log: string; lake: string; olap: string } {
  const root = path.resolve(dataDir);
  return { root, log: path.join(root, 'log'), lake: path.join(root, 'lake'), olap: path.join(root, 'olap') };
}
