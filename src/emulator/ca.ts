/**
 * The emulated Azure's certificate authority: the root the emulated ARM, Entra and database fronts
 * present certificates from, persisted in a folder so every process of a test run, and every
 * `azdb demo`, trusts the same root. The CA itself is azdb's (src/broker/local-ca.ts).
 */
import { loadOrCreateCa as loadOrCreateNamedCa, type LocalCa } from '../broker/local-ca.js';

export type { IssuedCertificate, LocalCa } from '../broker/local-ca.js';

const EMULATOR_CA_NAME = 'CN=azdb emulator local CA, O=azdb';

/** Loads the emulator's CA persisted in `dir`, or creates (and persists) a new one. */
export function loadOrCreateCa(dir: string): Promise<LocalCa> {
  return loadOrCreateNamedCa(dir, { name: EMULATOR_CA_NAME });
}
