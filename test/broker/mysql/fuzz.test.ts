/**
 * Random and mutated payloads through every decoder: each may succeed or throw MySqlProtocolError,
 * nothing else (no RangeError, TypeError or hang). Replay with AZDB_MYSQL_FUZZ_SEED=<printed seed>.
 */
import { describe, expect, it } from 'vitest';
import { createPrng, seedFromEnv, type Prng } from '../../helpers/prng.js';
import { drain } from '../../helpers/decoders.js';
import { MariaDbCapability, comQuery, comStmtPrepare } from '../../helpers/mysql-payloads.js';
import { Capability, FieldType } from '../../../src/broker/mysql/codec/constants.js';
import { decodeClientHandshake, decodeHandshakeV10, encodeHandshakeResponse41, encodeHandshakeV10, encodeSslRequest } from '../../../src/broker/mysql/codec/handshake.js';
import {
  decodeAuthMoreData,
  decodeAuthServerPacket,
  decodeAuthSwitchRequest,
  decodeAuthSwitchResponse,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
} from '../../../src/broker/mysql/codec/auth-messages.js';
import { decodeErr, decodeOk, encodeErr, encodeOk } from '../../../src/broker/mysql/codec/responses.js';
import { Command, decodeQuery, decodeStmtPrepare } from '../../../src/broker/mysql/codec/commands.js';
import { decodeClearPassword, scrambleCachingSha2Password, scrambleNativePassword, verifyNativePassword } from '../../../src/broker/mysql/auth.js';
import { PacketDecoder } from '../../../src/broker/mysql/codec/packet-decoder.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { MySqlPayloadReader, PayloadWriter } from '../../../src/broker/mysql/codec/values.js';
import { MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';

const SEED = seedFromEnv('AZDB_MYSQL_FUZZ_SEED');
const CASES = 5_000;
const FRAMING_MAX = 64 * 1024;

const CLIENT_CAPS =
  Capability.LongPassword |
  Capability.ConnectWithDb |
  Capability.Protocol41 |
  Capability.SecureConnection |
  Capability.PluginAuth |
  Capability.ConnectAttrs |
  Capability.PluginAuthLenencClientData |
  Capability.SessionTrack |
  Capability.DeprecateEof |
  Capability.QueryAttributes;
const KNOWN_CAPS = [CLIENT_CAPS, Capability.Protocol41, Capability.Protocol41 | Capability.SecureConnection, CLIENT_CAPS & ~Capability.LongPassword];

const seeds: Buffer[] = [
  encodeHandshakeV10({ serverVersion: '8.0.36', connectionId: 7, authPluginData: Buffer.alloc(20, 0x41), capabilities: CLIENT_CAPS | Capability.Ssl, characterSet: 255, statusFlags: 2, authPluginName: 'caching_sha2_password', mariadbCapabilities: 0 }),
  encodeHandshakeV10({ serverVersion: '10.11.6-MariaDB', connectionId: 8, authPluginData: Buffer.alloc(20, 0x42), capabilities: CLIENT_CAPS & ~Capability.LongPassword, characterSet: 45, statusFlags: 2, authPluginName: 'mysql_native_password', mariadbCapabilities: MariaDbCapability.StmtBulkOperations }),
  encodeSslRequest({ capabilities: CLIENT_CAPS, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 }),
  encodeHandshakeResponse41({ capabilities: CLIENT_CAPS, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0, username: 'alice', authResponse: Buffer.alloc(32, 1), database: 'db', authPluginName: 'caching_sha2_password', connectAttributes: { _os: 'Linux', _pid: '1' } }),
  encodeHandshakeResponse41({ capabilities: Capability.Protocol41 | Capability.SecureConnection, maxPacketSize: 0, characterSet: 33, mariadbCapabilities: 0, username: 'bob', authResponse: Buffer.alloc(20, 2), database: undefined, authPluginName: undefined, connectAttributes: undefined }),
  encodeAuthSwitchRequest({ pluginName: 'mysql_native_password', pluginData: Buffer.alloc(21, 3) }),
  encodeAuthMoreData(Buffer.from([4])),
  encodeOk({ affectedRows: 1n, lastInsertId: 2n, statusFlags: 0x4002, warnings: 1, info: 'info', sessionState: Buffer.from([0, 1, 0]) }, CLIENT_CAPS),
  encodeErr({ code: 1045, sqlState: '28000', message: 'Access denied' }),
  Buffer.from('fe00000200', 'hex'), // EOF
  Buffer.from('00010000000200030000000000', 'hex'), // COM_STMT_PREPARE_OK
  comQuery('select 1', CLIENT_CAPS),
  new PayloadWriter().u8(Command.Query).lenenc(2).lenenc(1).u8(0b10).u8(1).u8(FieldType.Date).u8(0).lenencBytes('d').u8(FieldType.Double).u8(0).lenencBytes('x').u8(4).u32(0x07e80101).string('select 2').finish(),
  new PayloadWriter().u8(Command.InitDb).string('orders').finish(),
  comStmtPrepare('select ?'),
  new PayloadWriter().u8(Command.StmtExecute).u32(1).u8(8).u32(1).lenenc(1).u8(0).u8(1).u8(FieldType.Long).u8(0).lenencBytes('').u32(5).finish(),
  new PayloadWriter().u8(Command.StmtClose).u32(1).finish(),
  new PayloadWriter().u8(Command.ChangeUser).nulString('u').u8(20).zeros(20).nulString('d').u16(45).nulString('p').lenencBytes(new PayloadWriter().lenencBytes('a').lenencBytes('b').finish()).finish(),
  Buffer.from('token\0'),
];

type Decoder = (payload: Buffer, capabilities: number, prng: Prng) => unknown;

const decoders: Record<string, Decoder> = {
  decodeHandshakeV10: (p) => decodeHandshakeV10(p),
  decodeClientHandshake: (p) => decodeClientHandshake(p),
  decodeAuthSwitchRequest: (p) => decodeAuthSwitchRequest(p),
  decodeAuthSwitchResponse: (p) => decodeAuthSwitchResponse(p),
  decodeAuthMoreData: (p) => decodeAuthMoreData(p),
  decodeAuthServerPacket: (p, c) => decodeAuthServerPacket(p, c),
  decodeOk: (p, c) => decodeOk(p, c),
  decodeErr: (p) => decodeErr(p),
  decodeQuery: (p, c) => decodeQuery(p, c),
  decodeStmtPrepare: (p) => decodeStmtPrepare(p),
  decodeClearPassword: (p) => decodeClearPassword(p),
  scrambleNativePassword: (p) => scrambleNativePassword('x', p.subarray(0, 20)),
  scrambleCachingSha2Password: (p) => scrambleCachingSha2Password('x', p.subarray(0, 20)),
  verifyNativePassword: (p) => verifyNativePassword('x', p.subarray(0, 20), p.subarray(20)),
  lenencReads: (p) => {
    const reader = new MySqlPayloadReader(p, 'fuzz');
    while (reader.remaining > 0) reader.lenencOrNull();
  },
  PacketDecoder: (p, _c, prng) => {
    const decoder = new PacketDecoder({ maxPacketLength: FRAMING_MAX });
    const at = prng.int(p.length + 1);
    drain(decoder, p.subarray(0, at));
    drain(decoder, p.subarray(at));
    decoder.rest();
  },
  'PacketDecoder keeping heads': (p, _c, prng) => {
    const decoder = new PacketDecoder({ maxPacketLength: FRAMING_MAX, headLength: prng.int(32) });
    const at = prng.int(p.length + 1);
    drain(decoder, p.subarray(0, at));
    drain(decoder, p.subarray(at));
  },
};

const INTERESTING = [0x00, 0x01, 0x03, 0x7f, 0x80, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];

function mutate(prng: Prng, base: Buffer): Buffer {
  const bytes = Buffer.from(base);
  switch (prng.int(6)) {
    case 0:
      return prng.bytes(prng.int(80));
    case 1:
      return bytes.subarray(0, prng.int(bytes.length + 1));
    case 2: {
      for (let n = 1 + prng.int(4); n > 0 && bytes.length > 0; n--) bytes[prng.int(bytes.length)] = prng.int(256);
      return bytes;
    }
    case 3: {
      for (let n = 1 + prng.int(3); n > 0 && bytes.length > 0; n--) bytes[prng.int(bytes.length)] = prng.pick(INTERESTING);
      return bytes;
    }
    case 4: {
      const at = prng.int(bytes.length + 1);
      const inserted = Buffer.from(Array.from({ length: 1 + prng.int(9) }, () => prng.pick(INTERESTING)));
      return Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
    }
    default: {
      const at = prng.int(bytes.length + 1);
      return bytes.fill(0xff, at, Math.min(bytes.length, at + 1 + prng.int(8)));
    }
  }
}

/** A framed stream of the seeds, for the framing decoders. */
function stream(prng: Prng): Buffer {
  const packets = Array.from({ length: 1 + prng.int(4) }, (_, i) => encodePacket(i, prng.pick(seeds)));
  return Buffer.concat(packets);
}

describe('decoders under random input', () => {
  it(`throw only MySqlProtocolError over ${CASES} payloads (seed ${SEED})`, () => {
    const prng = createPrng(SEED);
    const failures: string[] = [];
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const framing = prng.int(4) === 0;
      const payload = mutate(prng, framing ? stream(prng) : prng.pick(seeds));
      const capabilities = prng.int(3) === 0 ? prng.int(2 ** 32) : prng.pick(KNOWN_CAPS);
      for (const [name, decode] of Object.entries(decoders)) {
        try {
          decode(payload, capabilities, prng);
          accepted++;
        } catch (error) {
          if (error instanceof MySqlProtocolError) refused++;
          else failures.push(`case ${i} ${name}(caps 0x${capabilities.toString(16)}, ${payload.toString('hex')}): ${String(error)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // Both outcomes must occur, or the mutations are not exercising the decoders.
    expect(refused).toBeGreaterThan(CASES);
    expect(accepted).toBeGreaterThan(CASES);
  });
});
