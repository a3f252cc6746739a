/**
 * The role local sessions get when `broker.roles` is absent: every database, any user, any name.
 * (An empty `broker.roles` list is different: no roles, nothing allowed.)
 */
import { ROLE_KIND, ROLE_VERSION, WILDCARD, type RoleConfig } from '../config/schema.js';

export const BUILTIN_LOCAL_ROLE_NAME = 'azdb-local';

export const BUILTIN_LOCAL_ROLE: RoleConfig = Object.freeze({
  version: ROLE_VERSION,
  kind: ROLE_KIND,
  metadata: Object.freeze({ name: BUILTIN_LOCAL_ROLE_NAME }),
  spec: Object.freeze({
    allow: Object.freeze({
      db_labels: Object.freeze({ [WILDCARD]: WILDCARD }),
      db_users: Object.freeze([WILDCARD]) as string[],
      db_names: Object.freeze([WILDCARD]) as string[],
    }),
    deny: Object.freeze({}),
  }),
  source: Object.freeze({ file: '<built-in>', line: 0, column: 0 }),
});
