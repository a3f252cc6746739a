import { describe, expect, it } from 'vitest';
import { Command, commandKeys, effectiveBindings, KEY_BINDINGS, keyPresses, matchCommand, matches, screenKeys, typedText } from '../../src/ui/keys.js';

describe('key bindings as data', () => {
  it('binds every command to at least one key', () => {
    for (const command of Object.values(Command)) expect(KEY_BINDINGS[command].length).toBeGreaterThan(0);
  });

  it('matches named keys and characters', () => {
    expect(matches(Command.Up, '', { upArrow: true })).toBe(true);
    expect(matches(Command.Up, 'k', {})).toBe(true);
    expect(matches(Command.Down, 'j', {})).toBe(true);
    expect(matches(Command.Down, 'n', { ctrl: true })).toBe(true);
    expect(matches(Command.Down, 'n', {})).toBe(false);
    expect(matches(Command.Connect, '', { return: true })).toBe(true);
    expect(matches(Command.ForceQuit, 'c', { ctrl: true })).toBe(true);
    expect(matches(Command.ForceQuit, 'c', {})).toBe(false);
    expect(matches(Command.Quit, 'q', {})).toBe(false); // q is the queries screen
    expect(matches(Command.Quit, 'Q', { shift: true })).toBe(true);
    expect(matches(Command.Queries, 'q', {})).toBe(true);
    expect(matches(Command.Doctor, 'd', {})).toBe(true);
    expect(matches(Command.Terminate, 'T', { shift: true })).toBe(true);
    expect(matches(Command.Terminate, 'k', {})).toBe(false); // k moves up, everywhere
    expect(matches(Command.CancelQuery, 'c', {})).toBe(true);
    expect(matches(Command.CancelQuery, 'c', { ctrl: true })).toBe(false);
    expect(matches(Command.No, 'n', {})).toBe(true);
    expect(matches(Command.No, 'n', { ctrl: true })).toBe(false);
    expect(matches(Command.Bottom, 'G', { shift: true })).toBe(true);
    expect(matches(Command.NextTunnel, '', { tab: true, shift: true })).toBe(false);
  });

  it('picks the first command of the screen priority list', () => {
    expect(matchCommand([Command.Accept, Command.Connect], '', { return: true })).toBe(Command.Accept);
    expect(matchCommand([Command.Connect, Command.Accept], '', { return: true })).toBe(Command.Connect);
    expect(matchCommand([Command.Tunnel], 'x', {})).toBeUndefined();
  });

  it('leaves plain characters to the text while typing, but not named keys or ctrl', () => {
    const commands = [Command.Up, Command.Quit, Command.Back, Command.ForceQuit];
    expect(matchCommand(commands, 'k', {}, { textInput: true })).toBeUndefined();
    expect(matchCommand(commands, 'q', {}, { textInput: true })).toBeUndefined();
    expect(matchCommand(commands, '', { upArrow: true }, { textInput: true })).toBe(Command.Up);
    expect(matchCommand(commands, '', { escape: true }, { textInput: true })).toBe(Command.Back);
    expect(matchCommand(commands, 'c', { ctrl: true }, { textInput: true })).toBe(Command.ForceQuit);
  });

  it('extracts typed text without control keys', () => {
    expect(typedText('ord', {})).toBe('ord');
    expect(typedText('', { return: true })).toBe('');
    expect(typedText('a', { ctrl: true })).toBe('');
    expect(typedText('a\u0007b', {})).toBe('ab');
  });

  it('writes the keys of a command for help', () => {
    expect(commandKeys(Command.Up)).toBe('↑/k/ctrl+p');
    expect(commandKeys(Command.Filter)).toBe('/');
    expect(commandKeys(Command.Connect)).toBe('enter');
  });

  it('leaves a key to the first command of a screen that has it', () => {
    // c is both "cancel query" and "copy": a screen with both gives it to the one listed first.
    const screen = [Command.CancelQuery, Command.Copy, Command.Up, Command.Down];
    expect(matchCommand(screen, 'c', {})).toBe(Command.CancelQuery);
    expect(effectiveBindings(screen, Command.Copy)).toEqual([]);
    expect(screenKeys(screen, Command.Copy)).toBe('');
    expect(matchCommand(screen, 'k', {})).toBe(Command.Up);
    expect(screenKeys(screen, Command.Up)).toBe('↑/k/ctrl+p');
    expect(screenKeys(screen, Command.Down)).toBe('↓/j/ctrl+n');
    expect(screenKeys([Command.Up], Command.Up)).toBe('↑/k/ctrl+p');
  });

  it('splits a chunk of plain characters into key presses, keeping named keys whole', () => {
    expect(keyPresses('rc', {})).toEqual([
      ['r', {}],
      ['c', {}],
    ]);
    expect(keyPresses('r', {})).toEqual([['r', {}]]);
    expect(keyPresses('', { escape: true })).toEqual([['', { escape: true }]]);
    expect(keyPresses('c', { ctrl: true })).toEqual([['c', { ctrl: true }]]);
  });

  it('splits enter, tab and backspace out of a chunk, as Ink names them alone', () => {
    // tmux send-keys e BSpace BSpace, or fast typing over SSH: one chunk reaches Ink.
    expect(keyPresses('e\u007f\u007fab\r', {})).toEqual([
      ['e', {}],
      ['', { delete: true }],
      ['', { delete: true }],
      ['a', {}],
      ['b', {}],
      ['', { return: true }],
    ]);
    expect(keyPresses('\t\b', {})).toEqual([
      ['', { tab: true }],
      ['', { backspace: true }],
    ]);
    // Anything else with a control character stays whole (Ink already parsed it).
    expect(keyPresses('a\u0001', {})).toEqual([['a\u0001', {}]]);
  });
});

describe('layout', () => {
  it('counts wrapped lines, rather one too many than one too few', async () => {
    const { textLines } = await import('../../src/ui/layout.js');
    expect(textLines('', 80)).toBe(1);
    expect(textLines('x'.repeat(80), 80)).toBe(1);
    expect(textLines('x'.repeat(81), 80)).toBe(2);
    expect(textLines('x'.repeat(150), 80)).toBe(3);
    expect(textLines('a\nb', 80)).toBe(2);
  });
});
