/** The MySQL audit line of a command the gate kept only the head of. */
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../../src/broker/audit.js';
import { auditCommand } from '../../../src/broker/mysql/command-audit.js';
import { comQuery } from '../../helpers/mysql-payloads.js';

const IDENTITY = { session_id: 's', database: 'shopdb', protocol: 'mysql', db_user: 'app', db_name: 'shop', client_address: '127.0.0.1:1' } as const;

describe('auditCommand', () => {
  it('keeps the note of the bytes the head left out after cutting the text to the audit length', () => {
    const lines: AuditEvent[] = [];
    const sink: AuditSink = { queries: true, write: (e) => void lines.push(e), close: async () => {} };
    const payload = comQuery(`select '${'x'.repeat(100_000)}'`, 0);
    const head = payload.subarray(0, 50_000);
    auditCommand(sink, IDENTITY, head, payload.length, 0);
    const query = (lines[0] as { query: string }).query;
    expect(query.startsWith("select 'xxx")).toBe(true);
    expect(query.endsWith(`more characters]…[${payload.length - head.length} more bytes]`)).toBe(true);
    expect(query.length).toBeLessThan(16 * 1024 + 100);
  });

  it("audits MariaDB's COM_STMT_BULK_EXECUTE like COM_STMT_EXECUTE, by statement id", () => {
    const lines: AuditEvent[] = [];
    const sink: AuditSink = { queries: true, write: (e) => void lines.push(e), close: async () => {} };
    const bulk = Buffer.from([0xfa, 7, 1, 0, 0, 0x80, 0]);
    auditCommand(sink, IDENTITY, bulk, bulk.length, 0);
    expect(lines).toMatchObject([{ kind: 'execute', statement: '263' }]);
  });
});
