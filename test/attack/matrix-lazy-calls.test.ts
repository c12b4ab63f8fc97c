/** The attack matrix (see matrix.ts) against serveLazy(): calls and notifications. */
import { matrix } from './matrix.js';

matrix('lazy', 'calls');
