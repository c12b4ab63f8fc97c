/**
 * `ipcbor conformance ADDRESS`: runs conformance/vectors.json against the
 * server at ADDRESS, one fresh connection per case. `--serve ADDRESS`
 * serves the conformance service instead, for testing a client.
 */
import { readFileSync } from 'node:fs';
import { IpcborError } from '../core/errors.js';
import { runVectors, type CaseResult, type Vectors } from '../core/conformance/runner.js';
import { createConformanceService } from '../core/conformance/service.js';
import { parseAddress } from '../node/address.js';
import { dialerFor } from '../node/client.js';
import { serve } from '../node/server.js';
import { option, readOption, tlsFromOptions, tlsHelp, tlsOptions, type Command, type Io } from './command.js';

/** The vectors shipped with the package (conformance/ sits beside dist/). */
const SHIPPED = new URL('../../../conformance/vectors.json', import.meta.url);

function loadVectors(values: Record<string, string | boolean | string[] | undefined>): Vectors {
  const text = readOption(values, 'vectors') ?? readFileSync(SHIPPED);
  try {
    return JSON.parse(text.toString('utf8')) as Vectors;
  } catch (err) {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `the vectors are not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether a case is selected by `--case`: its exact name, or a prefix ending in "." (`broken.`). */
function selector(names: string[]): ((name: string) => boolean) | undefined {
  if (names.length === 0) return undefined;
  return (name) => names.some((n) => n === name || (n.endsWith('.') && name.startsWith(n)));
}

async function serveUntilStopped(address: string, io: Io): Promise<number> {
  const server = await serve(createConformanceService(), address);
  io.out(`serving the conformance service on ${server.addresses.join(', ')}`);
  await new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve(), { once: true })));
  await server.close();
  return 0;
}

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'run the conformance vectors against a server, or serve the conformance service',
  usage: 'ipcbor conformance ADDRESS [--json] [--case NAME]... [--timeout MS] [--vectors FILE] [--ca FILE [--cert FILE --key FILE]]\n       ipcbor conformance --serve ADDRESS',
  help: `Runs the conformance vectors (conformance/vectors.json) against the server
at ADDRESS, which must serve the conformance service (conformance/README.md).
Each case runs on a connection of its own. Prints one line per case, "ok
NAME" or "FAIL NAME" with the step that failed and what differed, then a
summary. Exits 0 when every case passed, 1 when one failed.

Options:
  --json          print one JSON document {passed, failed, results} instead
  --case NAME     run only this case; a NAME ending in "." runs every case
                  of that group (--case broken.); may be repeated
  --timeout MS    how long a step waits for what it expects (default 5000)
  --vectors FILE  run these vectors instead of the ones shipped
  --serve ADDRESS serve the conformance service at ADDRESS until Ctrl-C, so
                  a client can be tested against it

${tlsHelp}`,
  options: { json: { type: 'boolean' }, case: { type: 'string', multiple: true }, timeout: { type: 'string' }, vectors: { type: 'string' }, serve: { type: 'string' }, ...tlsOptions },
  async run(positionals, values, io) {
    const serveAt = option(values, 'serve');
    if (serveAt !== undefined) {
      if (positionals.length > 0) return io.usage();
      return serveUntilStopped(serveAt, io);
    }
    const [address] = positionals;
    if (!address || positionals.length > 1) return io.usage();
    const timeoutText = option(values, 'timeout');
    const stepTimeout = timeoutText === undefined ? 5000 : Number(timeoutText);
    if (!(stepTimeout > 0)) return io.usage();
    const vectors = loadVectors(values);
    const names = (values.case as string[] | undefined) ?? [];
    const only = selector(names);
    const unknown = names.filter((n) => !vectors.cases.some((c) => (only ? selector([n])!(c.name) : false)));
    if (unknown.length > 0) {
      io.error(`ipcbor conformance: no case named ${unknown.join(', ')}`);
      return 2;
    }
    const dial = dialerFor(parseAddress(address), tlsFromOptions(values), 0);
    const json = values.json === true;
    const results: CaseResult[] = await runVectors(vectors, dial, {
      stepTimeout,
      signal: io.signal,
      ...(only ? { only } : {}),
      onResult: (r) => {
        if (json) return;
        if (r.ok) io.out(`ok   ${r.name}`);
        else io.out(`FAIL ${r.name}${r.step === undefined ? '' : `: step ${r.step}${r.note ? ` (${r.note})` : ''}`}\n     ${r.difference ?? ''}`);
      },
    });
    const failed = results.filter((r) => !r.ok).length;
    if (json) io.out(JSON.stringify({ passed: results.length - failed, failed, results }, null, 2));
    else io.out(`${results.length - failed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  },
};
