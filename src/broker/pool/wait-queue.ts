/**
 * The FIFO of clients waiting for a key's connection. A transaction pool takes from its front once
 * per transaction with a couple of hundred clients queued, where Array.prototype.shift fell to
 * V8's slow builtin; this moves a head index instead and compacts now and then.
 */
export class WaitQueue<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  first(): T | undefined {
    return this.items[this.head];
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) this.clear();
    else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Takes `item` out wherever it waits; false when it is not queued. */
  remove(item: T): boolean {
    const at = this.items.indexOf(item, this.head);
    if (at < 0) return false;
    this.items.splice(at, 1);
    if (this.head === this.items.length) this.clear();
    return true;
  }

  /** Every item, in order, leaving the queue empty. */
  drain(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.clear();
    return all;
  }

  private clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Shifts between compactions at most: the store is copied once its front half is taken. */
const COMPACT_AFTER = 1024;
