/** The attack matrix (see matrix.ts) against serveLazy(). */
import { matrix } from './matrix.js';

matrix('lazy');
