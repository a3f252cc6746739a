#!/usr/bin/env -S node --max-semi-space-size=1
// A 1 MiB young generation: the broker allocates small, short-lived objects per message, and
// V8's default lets the young generation grow to tens of MiB that stay resident (measured:
// about 27 MiB less RSS with 1000 idle sessions, same throughput). npm run bench runs its
// azdb with the flags of this first line.
import { main } from '../dist/azdb.js';

process.exitCode = await main(process.argv.slice(2));
// The command is over: work it gave up on (a credential request that never answers, left at
// Ctrl+C or at azdb's deadline) must not hold the process.
setTimeout(() => process.exit(), 200).unref();
