/** The attack matrix (see matrix.ts) against createLoop(): stream items both ways and events. */
import { matrix } from './matrix.js';

matrix('loop', 'streams');
