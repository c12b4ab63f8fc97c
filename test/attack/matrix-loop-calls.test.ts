/** The attack matrix (see matrix.ts) against createLoop(): calls and notifications. */
import { matrix } from './matrix.js';

matrix('loop', 'calls');
