/** The wizard's screens: they only render the state. */
import { Box, Text } from 'ink';
import { PRIVILEGE_DESCRIPTIONS, PRIVILEGE_LEVELS, STEP_IDS, STEP_TITLES, privilegeLevel, type SetupAnswers, type StepReport } from '../../core/api/setup.js';
import { KeyBar } from '../components/key-bar.js';
import { Spinner } from '../components/spinner.js';
import { useTheme } from '../theme.js';
import { helpRows, keyHints } from './keys.js';
import { FIELD_LABELS, STEP_FIELDS, choicesOf, currentStep, type StepStatus, type WizardState } from './state.js';

const ICONS: Record<StepStatus, string> = { pending: '○', running: '…', pass: '✓', fail: '✗', skipped: '↷' };

/** At most this many explanation lines (the rest are in the artifact files). */
const MAX_LINES = 12;

export function WizardView({ state, note, configFile }: { state: WizardState; note: string; configFile: string }) {
  const theme = useTheme();
  const step = currentStep(state);
  return (
    <Box flexDirection="column">
      <Text bold>
        azdb setup{step ? ` — step ${state.index + 1}/5: ${STEP_TITLES[step]}` : ' — done'}
      </Text>
      {note ? <Text color={theme.muted} wrap="truncate-end">{note}</Text> : null}
      <StepStrip state={state} />
      {state.help ? <HelpBody /> : step ? <StepBody state={state} /> : <DoneBody state={state} configFile={configFile} />}
      <KeyBar hints={keyHints(state)} />
    </Box>
  );
}

function StepStrip({ state }: { state: WizardState }) {
  const theme = useTheme();
  return (
    <Text wrap="truncate-end">
      {STEP_IDS.map((id, i) => {
        const status = state.status[id];
        const color = status === 'pass' ? theme.ok : status === 'fail' ? theme.error : status === 'skipped' ? theme.warn : undefined;
        return (
          <Text key={id}>
            {i > 0 ? '  ' : ''}
            <Text color={color} inverse={i === state.index}>
              {ICONS[status]} {i + 1} {STEP_TITLES[id]}
            </Text>
          </Text>
        );
      })}
    </Text>
  );
}

function StepBody({ state }: { state: WizardState }) {
  const theme = useTheme();
  const step = currentStep(state)!;
  const status = state.status[step];
  const report = state.reports[step];
  const fields = STEP_FIELDS[step];
  return (
    <Box flexDirection="column" marginY={1}>
      {fields.map((field, i) => {
        const editing = state.editing?.field === field;
        const choices = choicesOf(field);
        if (editing && choices) return <ChoiceField key={field} field={field} choices={choices} value={state.editing!.value} />;
        const value = editing ? `${state.editing!.value}▏` : state.answers[field] || '(empty)';
        return (
          <Text key={field} wrap="truncate-end">
            <Text color={i === state.focus ? theme.accent : theme.muted}>{i === state.focus ? '›' : ' '} {FIELD_LABELS[field]}: </Text>
            <Text inverse={editing}>{value}</Text>
            {field === 'privilege' && !editing ? <Text color={theme.muted}> — {PRIVILEGE_DESCRIPTIONS[privilegeLevel(state.answers.privilege)]}</Text> : null}
          </Text>
        );
      })}
      {status === 'running' ? <Spinner label={`Checking ${STEP_TITLES[step].toLowerCase()}...`} /> : null}
      {report && status !== 'running' ? <ReportView report={report} status={status} /> : null}
      {status === 'skipped' && !report ? <Text color={theme.warn}>skipped</Text> : null}
      {state.confirmOverwrite ? (
        <Text bold color={theme.warn}>
          Overwrite the existing config? (y/n)
        </Text>
      ) : null}
    </Box>
  );
}

/** A field being answered by choosing: every value, the chosen one marked. */
function ChoiceField({ field, choices, value }: { field: keyof SetupAnswers; choices: readonly string[]; value: string }) {
  const theme = useTheme();
  return (
    <Box flexDirection="column">
      <Text color={theme.accent}>› {FIELD_LABELS[field]}: (↑/↓ choose, enter save, esc cancel)</Text>
      {choices.map((choice) => (
        <Text key={choice} wrap="truncate-end">
          {'    '}
          <Text inverse={choice === value}>{choice === value ? '●' : '○'} {choice}</Text>
          {field === 'privilege' ? <Text color={theme.muted}> — {PRIVILEGE_DESCRIPTIONS[privilegeLevel(choice)]}</Text> : null}
        </Text>
      ))}
    </Box>
  );
}

/** `?`: every key, and what step 3's privilege levels grant. */
function HelpBody() {
  const theme = useTheme();
  const rows = helpRows();
  const width = Math.max(...rows.map((r) => r.keys.length));
  return (
    <Box flexDirection="column" marginY={1}>
      <Text bold>Keys</Text>
      {rows.map((r) => (
        <Text key={r.keys} wrap="truncate-end">
          {'  '}
          <Text bold color={theme.accent}>{r.keys.padEnd(width)}</Text> {r.label}
        </Text>
      ))}
      <Text bold>Privilege levels (step 3), granted only on the databases named for each engine</Text>
      {PRIVILEGE_LEVELS.map((level) => (
        <Text key={level}>
          {'  '}
          <Text bold>{level.padEnd(10)}</Text> {PRIVILEGE_DESCRIPTIONS[level]}
        </Text>
      ))}
    </Box>
  );
}

function ReportView({ report, status }: { report: StepReport; status: StepStatus }) {
  const theme = useTheme();
  const pass = status === 'pass';
  const shown = report.lines.slice(0, MAX_LINES);
  return (
    <Box flexDirection="column">
      <Text color={pass ? theme.ok : theme.error}>
        {pass ? 'PASS' : 'FAIL'} {report.detail}
      </Text>
      {report.hint && !pass ? <Text color={theme.warn}>hint: {report.hint}</Text> : null}
      {shown.map((line, i) => (
        <Text key={i} wrap="truncate-end" color={theme.muted}>
          {'  '}
          {line}
        </Text>
      ))}
      {report.lines.length > shown.length ? <Text color={theme.muted}>  … {report.lines.length - shown.length} more in the files below</Text> : null}
      {report.artifacts.map((a) => (
        <Text key={a.path} wrap="truncate-end">
          {'  '}
          {a.label}: {a.path}
        </Text>
      ))}
    </Box>
  );
}

function DoneBody({ state, configFile }: { state: WizardState; configFile: string }) {
  const theme = useTheme();
  const skipped = STEP_IDS.filter((id) => state.status[id] === 'skipped');
  return (
    <Box flexDirection="column" marginY={1}>
      <Text color={theme.ok}>Setup is complete{skipped.length > 0 ? ` (skipped: ${skipped.map((id) => STEP_TITLES[id]).join(', ')})` : ''}.</Text>
      <Text>Config: {configFile}</Text>
      <Text>Open the picker now, or later with `azdb --config {configFile}`.</Text>
    </Box>
  );
}

