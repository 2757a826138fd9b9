/** Where the package lives (for its version and the addon), from the compiled file's location. */

import * as fs from 'node:fs';
import * as path from 'node:path';

let cached: string | null = null;

/** The directory holding vxmesh's package.json (works from src/ via ts and from dist/src/). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'vxmesh') return (cached = dir);
      } catch {
        /* keep looking */
      }
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find vxmesh's package.json above ${__dirname}`);
}

export function packageVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version as string;
}
