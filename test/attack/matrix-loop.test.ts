/** The attack matrix (see matrix.ts) against createLoop(). */
import { matrix } from './matrix.js';

matrix('loop');
