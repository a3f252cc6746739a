/**
 * `KILL [HARD|SOFT] [QUERY|CONNECTION] <id>` naming a connection id azdb minted (the one its
 * greeting gave a client) becomes the same statement for the server's thread behind it: how
 * mysql's and mariadb's Ctrl+C reach the query they mean. Anything else is left as it is.
 */
import { Command, decodeQuery } from './codec/commands.js';

/** A KILL statement is short; longer COM_QUERY packets are never looked into. */
export const MAX_KILL_PACKET = 128;

const KILL = /^(\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(?:QUERY|CONNECTION)\s+)?)(\d{1,10})(\s*;?\s*)$/i;

/** The COM_QUERY payload with the server's thread id, or undefined when it is not a KILL of a minted id. */
export function translateKill(payload: Buffer, capabilities: number, threadOf: (mintedId: number) => number | undefined): Buffer | undefined {
  if (payload[0] !== Command.Query || payload.length > MAX_KILL_PACKET || !mentionsKill(payload)) return undefined;
  let query;
  try {
    query = decodeQuery(payload, capabilities);
  } catch {
    return undefined;
  }
  if (query.attributeCount > 0) return undefined;
  const match = KILL.exec(query.sql);
  if (!match) return undefined;
  const threadId = threadOf(Number(match[2]));
  if (threadId === undefined) return undefined;
  const prefix = payload.subarray(0, payload.length - Buffer.byteLength(query.sql));
  return Buffer.concat([prefix, Buffer.from(`${match[1]}${threadId}${match[3]}`)]);
}

const LOWER_KILL = [0x6b, 0x69, 0x6c, 0x6c]; // "kill"

/**
 * Whether the bytes hold "kill" in any case: short queries pass here on their way to the server
 * (point selects are short), so most are let go without decoding their text or running the regex.
 */
function mentionsKill(payload: Buffer): boolean {
  for (let i = 1; i + 4 <= payload.length; i++) {
    if ((payload[i]! | 0x20) !== LOWER_KILL[0]) continue;
    if ((payload[i + 1]! | 0x20) === LOWER_KILL[1] && (payload[i + 2]! | 0x20) === LOWER_KILL[2] && (payload[i + 3]! | 0x20) === LOWER_KILL[3]) return true;
  }
  return false;
}
