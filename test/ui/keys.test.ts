import { describe, expect, it } from 'vitest';
import { Command, commandKeys, KEY_BINDINGS, matchCommand, matches, typedText } from '../../src/ui/keys.js';

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
    expect(matches(Command.Quit, 'q', { ctrl: true })).toBe(false);
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
});
