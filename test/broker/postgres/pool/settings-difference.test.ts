import { describe, expect, it } from 'vitest';
import { hasSettings, settingsDifference } from '../../../../src/broker/postgres/pool/server-connection.js';

const map = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('settingsDifference', () => {
  it('sets nothing when the connection already has the client parameters', () => {
    expect(settingsDifference(map({ application_name: 'a', datestyle: 'ISO, DMY' }), map({ datestyle: 'ISO, DMY', application_name: 'a' }))).toEqual([]);
  });

  it('sets what differs and resets what the previous client had alone', () => {
    expect(settingsDifference(map({ application_name: 'a', timezone: 'UTC', 'my.flag': 'x' }), map({ application_name: 'b', timezone: 'UTC' }))).toEqual([
      "SELECT pg_catalog.set_config(E'application_name', E'b', false)",
      'RESET "my"."flag"',
    ]);
  });

  it('quotes values and names so that a parameter cannot inject SQL', () => {
    expect(settingsDifference(new Map(), map({ application_name: "x'); drop table t; --\\" }))).toEqual([
      "SELECT pg_catalog.set_config(E'application_name', E'x''); drop table t; --\\\\', false)",
    ]);
    expect(settingsDifference(map({ 'we"ird': 'v' }), new Map())).toEqual(['RESET "we""ird"']);
  });
});

describe('hasSettings', () => {
  it('says whether settingsDifference would be empty', () => {
    const cases: Array<[Record<string, string>, Record<string, string>]> = [
      [{ application_name: 'a', datestyle: 'ISO, DMY' }, { datestyle: 'ISO, DMY', application_name: 'a' }],
      [{ application_name: 'a' }, { application_name: 'b' }],
      [{ application_name: 'a', timezone: 'UTC' }, { application_name: 'a' }],
      [{ application_name: 'a' }, { application_name: 'a', timezone: 'UTC' }],
      [{ application_name: 'a' }, { timezone: 'a' }],
      [{}, {}],
    ];
    for (const [current, target] of cases) {
      expect(hasSettings({ settings: map(current) }, map(target)), JSON.stringify([current, target])).toBe(settingsDifference(map(current), map(target)).length === 0);
    }
  });
});
