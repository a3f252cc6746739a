/** Role (RBAC) evaluation for database logins — pure, Teleport role v7 semantics. */
export { BUILTIN_LOCAL_ROLE, BUILTIN_LOCAL_ROLE_NAME } from './builtin.js';
export {
  allowedValues,
  checkAccess,
  namesEnforced,
  type AccessRequest,
  type AccessResult,
  type AllowedValues,
  type DatabaseRef,
  type Role,
} from './evaluate.js';
export {
  DEFAULT_MYSQL_DB_NAME,
  DEFAULT_POSTGRES_DB_NAME,
  chooseLogin,
  type AllowedLogins,
  type Login,
  type LoginFlags,
} from './login.js';
export {
  compilePattern,
  evaluateLabels,
  isMatchAll,
  isRegexPattern,
  labelValues,
  matchLabelValue,
  matchLabels,
  matchValue,
  patternError,
  type LabelMatch,
} from './match.js';
export { validateRoles, type RoleIssue } from './validate.js';
export type { Person } from './subjects.js';
