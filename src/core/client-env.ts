/**
 * The environment of a database client azdb starts (psql, mariadb / mysql): what a terminal
 * program needs (PATH, HOME, locale, terminal, pager and editor, the client's own display
 * settings) and the tunnel's password, never the credentials azdb itself runs with
 * (`AZURE_CLIENT_SECRET`, `IDENTITY_HEADER`, other tools' tokens) nor settings that would point the
 * client somewhere other than the tunnel (`PGHOSTADDR`, `PGSERVICE`…).
 */
type Protocol = 'postgres' | 'mysql';

/** Whatever the client: running, finding files, talking to the terminal. */
const COMMON = [
  /^(PATH|HOME|USER|LOGNAME|SHELL|TERM|TERMINFO|TERMINFO_DIRS|COLORTERM|COLUMNS|LINES|NO_COLOR)$/i,
  /^(LANG|LANGUAGE|LC_[A-Z_]+|TZ|TMPDIR|TMP|TEMP|XDG_[A-Z_]+)$/i,
  /^(PAGER|EDITOR|VISUAL|LESS|LESSCHARSET|LESSOPEN|LESSCLOSE|MORE)$/i,
  /^(LD_LIBRARY_PATH|DYLD_LIBRARY_PATH|DYLD_FALLBACK_LIBRARY_PATH)$/i,
  // Windows: programs misbehave without these.
  /^(SYSTEMROOT|WINDIR|COMSPEC|PATHEXT|APPDATA|LOCALAPPDATA|USERPROFILE|HOMEDRIVE|HOMEPATH)$/i,
];

/** The client's own settings about display and behaviour; nothing about where or as whom to connect. */
const CLIENT: Record<Protocol, RegExp> = {
  postgres: /^(PSQLRC|PSQL_[A-Z_]+|PGCLIENTENCODING|PGDATESTYLE|PGTZ|PGOPTIONS|PGSYSCONFDIR|PGCONNECT_TIMEOUT)$/i,
  mysql: /^(MYSQL_HISTFILE|MYSQL_HISTIGNORE|MYSQL_PS1|MYSQL_HOME|MARIADB_HOME)$/i,
};

/** `parent`'s variables a `protocol` client needs, with `own` (the password, its settings) over them. */
export function clientEnvironment(parent: NodeJS.ProcessEnv, protocol: Protocol, own: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && (COMMON.some((pattern) => pattern.test(name)) || CLIENT[protocol].test(name))) env[name] = value;
  }
  return { ...env, ...own };
}
