// Replaced by the real harness (embedded PostgreSQL + emulator) in a later step.
export default async function setup(): Promise<void> {}
