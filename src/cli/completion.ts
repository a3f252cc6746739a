/**
 * Shell completion: `azdb completion bash|zsh|fish` prints a script for the shell to source; the
 * script asks `azdb __complete WORDS…` for the candidates of the word being typed, so commands,
 * flags and database names always match this azdb and its config.
 */
import type { Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** Commands whose first argument is a database name. */
const TAKES_DATABASE = new Set(['db connect', 'db logout', 'proxy db', 'queries', 'doctor']);

export function completionScript(shell: Shell): string {
  switch (shell) {
    case 'bash':
      return BASH;
    case 'zsh':
      return `autoload -U +X bashcompinit && bashcompinit\n${BASH}`;
    case 'fish':
      return "complete -c azdb -f -a '(azdb __complete -- (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'\n";
  }
}

const BASH = `_azdb_complete() {
  local IFS=$'\\n'
  COMPREPLY=($(azdb __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _azdb_complete azdb
`;

/**
 * The candidates for the last of `words` (the word being typed; '' for a new one), given the
 * ones before it. `databaseNames` is asked only where a database name may come.
 */
export async function completions(program: Command, words: readonly string[], databaseNames: () => Promise<string[]>): Promise<string[]> {
  const typed = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  let command = program;
  const path: string[] = [];
  let positional = 0;
  for (let i = 0; i < before.length; i++) {
    const word = before[i]!;
    if (word.startsWith('-')) {
      if (takesValue(command, program, word) && !word.includes('=')) i++;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub && positional === 0) {
      command = sub;
      path.push(sub.name());
    } else {
      positional++;
    }
  }
  const previous = before.at(-1);
  if (previous?.startsWith('-') && !previous.includes('=') && takesValue(command, program, previous)) return [];
  if (typed.startsWith('-')) {
    const flags = [...command.options, ...(command === program ? [] : program.options)].flatMap((o) => [o.long, o.short]).filter((f): f is string => Boolean(f));
    return [...new Set(flags)].filter((f) => f.startsWith(typed)).sort();
  }
  const candidates = command.commands.filter((c) => !c.name().startsWith('_')).map((c) => c.name());
  if (positional === 0 && TAKES_DATABASE.has(path.join(' '))) candidates.push(...(await databaseNames().catch(() => [])));
  if (command.name() === 'completion' && positional === 0) candidates.push(...SHELLS);
  return candidates.filter((c) => c.startsWith(typed)).sort();
}

function takesValue(command: Command, program: Command, flag: string): boolean {
  const option = [...command.options, ...program.options].find((o: Option) => o.long === flag || o.short === flag);
  return Boolean(option && (option.required || option.optional));
}
