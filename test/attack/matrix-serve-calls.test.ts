/** The attack matrix (see matrix.ts) against serve(): calls and notifications. */
import { matrix } from './matrix.js';

matrix('serve', 'calls');
