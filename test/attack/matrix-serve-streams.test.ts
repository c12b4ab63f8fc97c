/** The attack matrix (see matrix.ts) against serve(): stream items both ways and events. */
import { matrix } from './matrix.js';

matrix('serve', 'streams');
