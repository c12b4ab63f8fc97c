/** The attack matrix (see matrix.ts) against serveLazy(): stream items both ways and events. */
import { matrix } from './matrix.js';

matrix('lazy', 'streams');
