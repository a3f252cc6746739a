import { describe, expect, it } from 'vitest';
import { WaitQueue } from '../../../src/broker/pool/wait-queue.js';

describe('WaitQueue', () => {
  it('gives items back in arrival order across compactions, with removals anywhere', () => {
    const queue = new WaitQueue<number>();
    const model: number[] = [];
    let next = 0;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    // Long enough for many compactions with a couple of hundred waiting, as a busy pool has.
    for (let step = 0; step < 20_000; step++) {
      const roll = random();
      if (roll < 0.5 || model.length < 150) {
        queue.push(next);
        model.push(next++);
      } else if (roll < 0.95) {
        expect(queue.shift()).toBe(model.shift());
      } else {
        const victim = model[Math.floor(random() * model.length)]!;
        expect(queue.remove(victim)).toBe(true);
        model.splice(model.indexOf(victim), 1);
        expect(queue.remove(victim)).toBe(false);
      }
      expect(queue.length).toBe(model.length);
      expect(queue.first()).toBe(model[0]);
    }
    expect(queue.drain()).toEqual(model);
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
    expect(queue.first()).toBeUndefined();
  });
});
