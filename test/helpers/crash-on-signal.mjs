// Preloaded (`node --import`) into a child `seed serve` by test/faults-shutdown.test.ts: on
// SIGUSR2 the process suffers the fault SEED_TEST_CRASH names, outside any request, as a bug in
// a callback would: `exception` throws from a timer, `rejection` leaves a promise rejected.
process.on('SIGUSR2', () => {
  if (process.env.SEED_TEST_CRASH === 'rejection') void Promise.reject(new Error('injected rejection'));
  else setImmediate(() => {
    throw new Error('injected exception');
  });
});
