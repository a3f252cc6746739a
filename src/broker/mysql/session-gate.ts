/**
 * The client→server tap of a relayed MySQL session, pooled or not: passes client bytes on through
 * the command gate (audit, KILL translation), and stops for a COM_CHANGE_USER until change-user.ts
 * has answered it.
 */
import { errorMessage } from '../../errors.js';
import type { RelayTap } from '../relay.js';
import { connectionIds, serverKey } from './connection-ids.js';
import { translateKill } from './kill-translation.js';
import { CommandGate } from './command-gate.js';
import { auditCommand } from './command-audit.js';
import { Capability } from './codec/constants.js';
import { ClientInbox, changeUser, type ChangeUserContext } from './change-user.js';

/** Query text kept for the audit: its 16 Ki UTF-16 units in UTF-8 (at most 3 bytes each), plus query attributes. */
const AUDIT_HEAD_LENGTH = 3 * 16 * 1024 + 1024;

/** Client bytes queued while a COM_CHANGE_USER is answered; a client that sends more is broken. */
const MAX_BYTES_DURING_CHANGE = 1024 * 1024;

/** Passes client bytes on and audits them when asked; stops for a COM_CHANGE_USER until it is answered. */
export function commandGate(change: ChangeUserContext): RelayTap {
  const { options, identity, capabilities } = change;
  return (fail) => {
    const server = serverKey(options.target);
    const kill = (payload: Buffer) => translateKill(payload, capabilities, (minted) => connectionIds.threadOf(minted, server));
    const gate = new CommandGate(options.audit.queries ? AUDIT_HEAD_LENGTH : 0, undefined, kill);
    const audited = options.audit.queries ? identity : undefined;
    let inbox: ClientInbox | undefined;
    let queued = 0;
    const pass = (chunk: Buffer): Buffer[] => {
      if (inbox) {
        queued += chunk.length;
        if (queued > MAX_BYTES_DURING_CHANGE) fail('client sent more than 1 MiB while its COM_CHANGE_USER was answered');
        else inbox.push(chunk);
        return [];
      }
      let result;
      try {
        result = gate.push(chunk);
      } catch (error) {
        fail(`client sent a malformed packet: ${errorMessage(error)}`);
        return [];
      }
      for (const event of result.events) {
        if (event.type === 'intercepted') {
          const current = (inbox = new ClientInbox(change.client));
          queued = result.rest.length;
          if (result.rest.length > 0) current.push(result.rest);
          // A client that leaves mid-change ends the wait for its auth switch reply.
          const left = (): void => void current.push(null);
          change.client.once('close', left);
          void changeUser(change, current, event).then((outcome) => {
            change.client.off('close', left);
            inbox = undefined;
            current.destroy();
            if (outcome.fatal !== undefined) return fail(outcome.fatal);
            if (outcome.rest.length > 0) for (const part of pass(outcome.rest)) change.upstream.write(part);
          });
        } else if (audited) {
          auditCommand(options.audit, audited, event.head, event.length, capabilities & Capability.QueryAttributes);
        }
      }
      return result.forward;
    };
    return pass;
  };
}
