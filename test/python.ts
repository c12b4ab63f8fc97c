/**
 * Python with cbor2, for the tests that run a foreign peer or a foreign
 * codec. Skipped where it is missing, unless IPCBOR_REQUIRE_PYTHON=1 (as
 * .ci/run sets), where its absence fails the test instead.
 */
import { spawnSync } from 'node:child_process';

function findPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import cbor2'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** A python3 that has cbor2, if there is one. */
export const python = findPython();

/** The skip reason for node:test, or false (also when it is required: then the test fails without it). */
export const skipWithoutPython: string | false = python === undefined && process.env.IPCBOR_REQUIRE_PYTHON !== '1' ? 'python3 with cbor2 is not installed (Debian: python3-cbor2)' : false;
