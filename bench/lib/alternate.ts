/**
 * The order every paired measurement of the benchmark uses: in pair `k`, the subject's slice and
 * the baseline's, the subject first in even pairs and second in odd ones, so a machine speeding
 * up or slowing down within a pair favours neither side.
 */
export async function alternatingPair<T>(pair: number, subject: () => Promise<T>, baseline: () => Promise<T>): Promise<{ subject: T; baseline: T }> {
  if (pair % 2 === 0) {
    const first = await subject();
    return { subject: first, baseline: await baseline() };
  }
  const first = await baseline();
  return { subject: await subject(), baseline: first };
}
