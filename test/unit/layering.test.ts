/**
 * The layering of src/ (oxlint.layers.config.mjs, run by oxlint): no import
 * runs upward, core stays free of node/, cli/ and Node, no cycles.
 *
 * The check runs on the sources as they are and must report nothing. So
 * that it cannot pass by seeing nothing, it must have read every .ts file of
 * src/, and the same rules, run on a copy of src/ with a few bad imports
 * added (type-only ones among them), must report each of those.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG = 'oxlint.layers.config.mjs';
const OXLINT = join(dirname(createRequire(import.meta.url).resolve('oxlint/package.json')), 'bin', 'oxlint');

interface Diagnostic {
  code: string;
  message: string;
  help?: string;
  note?: string;
  filename: string;
  labels: { span: { line: number; column: number } }[];
}
interface Report {
  diagnostics: Diagnostic[];
  number_of_files: number;
  number_of_rules: number;
}

/** Runs the layering check on `dir` (a copy of the repository's layout: src/ and the config). */
function check(dir: string): Report {
  const r = spawnSync(process.execPath, [OXLINT, '-c', CONFIG, '--format', 'json', 'src'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.ok(r.stdout?.trim().startsWith('{'), `oxlint gave no report (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}

const where = (d: Diagnostic) => `${d.filename}:${d.labels[0]?.span.line ?? '?'}:${d.labels[0]?.span.column ?? '?'}`;
const describeAll = (ds: Diagnostic[]) =>
  ds
    .map((d) => {
      // The cycle rule's help is the same general advice each time; its note draws the cycle.
      const help = d.code === 'import(no-cycle)' ? undefined : d.help;
      return [`${where(d)}  ${d.code}  ${d.message}`, help && `    ${help}`, d.note?.replace(/^/gm, '    ')].filter(Boolean).join('\n');
    })
    .join('\n');

const sourceFiles = (dir: string) => readdirSync(join(dir, 'src'), { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));

describe('layering of src/', () => {
  it('has no import that runs upward or leaves core for node/, cli/ or Node, and no cycle', () => {
    const report = check(ROOT);
    assert.equal(report.number_of_rules, 3, 'the config enables three rules: no-restricted-imports, import/no-cycle, typescript/consistent-type-imports');
    const files = sourceFiles(ROOT).length;
    assert.ok(files >= 40, `src/ has ${files} .ts files: fewer than expected`);
    assert.equal(report.number_of_files, files, 'oxlint read every .ts file of src/');
    assert.equal(report.diagnostics.length, 0, `layering violations (${CONFIG}):\n${describeAll(report.diagnostics)}`);
  });

  it('reports each of a set of bad imports added to a copy of src/, type-only ones included', () => {
    // file -> [content, the rules it must break (none: it must pass)]
    const planted: Record<string, [string, string[]]> = {
      'src/core/codec/zz-up.ts': ["import type { Peer } from '../peer/peer.js';\nexport type P = Peer;\n", ['eslint(no-restricted-imports)']],
      'src/core/peer/zz-up.ts': ["export type { ServerCore } from '../server/server.js';\n", ['eslint(no-restricted-imports)']],
      'src/core/server/zz-side.ts': ["import '../client/subscription.js';\n", ['eslint(no-restricted-imports)']],
      'src/core/client/zz-dynamic.ts': ["export const load = () => import('../server/server.js');\n", ['eslint(no-restricted-imports)']],
      'src/core/protocol/zz-node.ts': ["import type { Socket } from 'node:net';\nexport type S = Socket;\n", ['eslint(no-restricted-imports)']],
      'src/core/frame/zz-builtin.ts': ["import { readFileSync } from 'fs';\nexport const r = readFileSync;\n", ['eslint(no-restricted-imports)']],
      'src/core/codec/zz-package.ts': ["import type { StandardSchemaV1 } from '@standard-schema/spec';\nexport type S = StandardSchemaV1;\n", ['eslint(no-restricted-imports)']],
      'src/node/zz-cli.ts': ["import type { CommandContext } from '../cli/command.js';\nexport type C = CommandContext;\n", ['eslint(no-restricted-imports)']],
      'src/cli/zz-indirect.ts': ["export * from '../core/../index.js';\n", ['eslint(no-restricted-imports)']],
      'src/core/zz-new/x.ts': ["import { IpcborError } from '../errors.js';\nexport const E = IpcborError;\n", ['eslint(no-restricted-imports)']],
      'src/core/frame/zz-import-type.ts': ["export type D = import('./decoder.js').FrameDecoder;\n", ['typescript(consistent-type-imports)']],
      'src/core/frame/zz-cycle-a.ts': ["import type { B } from './zz-cycle-b.js';\nexport interface A { b?: B }\n", ['import(no-cycle)']],
      'src/core/frame/zz-cycle-b.ts': ["import type { A } from './zz-cycle-a.js';\nexport interface B { a?: A }\n", ['import(no-cycle)']],
      'src/core/peer/zz-fine.ts': [
        "import type { Codec } from '../codec/cbor.js';\nimport { IpcborError } from '../errors.js';\nimport type { Transport } from '../transport.js';\nexport type T = [Codec, Transport];\nexport const E = IpcborError;\n",
        [],
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), 'ipcbor-layering-'));
    try {
      cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
      copyFileSync(join(ROOT, CONFIG), join(dir, CONFIG));
      for (const [file, [content]] of Object.entries(planted)) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), content);
      }
      const report = check(dir);
      for (const [file, [, codes]] of Object.entries(planted)) {
        const found = [...new Set(report.diagnostics.filter((d) => d.filename === file).map((d) => d.code))].sort();
        assert.deepEqual(found, [...codes].sort(), `${file}: expected ${codes.join(', ') || 'nothing'}; the check reported:\n${describeAll(report.diagnostics.filter((d) => d.filename === file)) || '(nothing)'}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
