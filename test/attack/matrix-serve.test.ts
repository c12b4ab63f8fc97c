/** The attack matrix (see matrix.ts) against serve(). */
import { matrix } from './matrix.js';

matrix('serve');
