/**
 * A cap on concurrent broker sessions shared by several listeners (`azdb serve --max-connections`):
 * a listener's own `maxConnections` counts only its sockets, this counts the whole process's.
 */
export class ConnectionGate {
  private active = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`connection limit must be a positive integer, got ${limit}`);
  }

  /** Takes a slot; false when all `limit` are taken. */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active += 1;
    return true;
  }

  release(): void {
    if (this.active > 0) this.active -= 1;
  }

  get inUse(): number {
    return this.active;
  }
}
