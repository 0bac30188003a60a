// The permission algebra: single-profile verdicts (review honoured), and effective permissions
// of a lineage, checked on the shipped profiles and as properties over generated ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PURPOSES,
  combinePermissions,
  effectivePermissions,
  loadTermsRegistry,
  permissionsOf,
  termsProfileSchema,
  verdictFor,
  allows,
  verdictRank,
  type Obligation,
  type PurposeVerdict,
  type TermsProfile,
} from '../src/terms/index.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const registry = loadTermsRegistry();
const human = registry.human;
const runs = fuzzRuns(200);

// ---- generated profiles: few ids, clauses and obligations, so collisions and duplicates occur

const obligationPool: Obligation[] = [
  { kind: 'attribution', text: 'Built with X' },
  { kind: 'name-prefix', text: 'X' },
  { kind: 'flow-down', text: 'restrictions flow down' },
  { kind: 'mau-threshold', monthlyActiveUsers: 700_000_000, text: 'licence above 700M MAU' },
];

const clause = fc.constantFrom('§1', '§2', '§3');
const purposeVerdict: fc.Arbitrary<PurposeVerdict> = fc.oneof(
  fc.record({ verdict: fc.constant('allowed' as const), clause, reason: fc.constant('ok'), obligations: fc.constant<Obligation[]>([]) }),
  fc.record({ verdict: fc.constant('notAllowed' as const), clause, reason: fc.constant('no'), obligations: fc.constant<Obligation[]>([]) }),
  fc.record({
    verdict: fc.constant('constrained' as const),
    clause,
    reason: fc.constant('with obligations'),
    obligations: fc.uniqueArray(fc.constantFrom(...obligationPool), { minLength: 1, maxLength: 3 }),
  }),
);

const profile: fc.Arbitrary<TermsProfile> = fc
  .record({
    id: fc.constantFrom('alpha', 'beta', 'gamma', 'delta'),
    version: fc.constantFrom('1', '2'),
    review: fc.boolean(),
    confirmed: fc.boolean(),
    serve: purposeVerdict,
    evaluate: purposeVerdict,
    train: purposeVerdict,
    trainCompeting: purposeVerdict,
  })
  .map(({ id, version, review, confirmed, serve, evaluate, train, trainCompeting }) => ({
    id,
    version,
    title: id,
    source: 'https://example.com/terms',
    date: null,
    quote: { kind: 'paraphrase' as const, text: 'generated' },
    review,
    purposes: { serve, evaluate, train, 'train-competing': trainCompeting },
    origin: 'operator' as const,
    confirmation: review && confirmed ? { by: 'tester', at: '2025-01-01' } : null,
  }));

const lineage = fc.array(profile, { minLength: 1, maxLength: 6 });
const anyLineage = fc.array(profile, { maxLength: 6 });
const effective = (profiles: readonly TermsProfile[]) => effectivePermissions({ profiles, human });

// ---- facts about the shipped profiles

test('allows: constrained and allowed are usable, notAllowed is not', () => {
  assert.equal(allows({ profile: registry.require('llama-3.1'), purpose: 'train' }), true);
  assert.equal(allows({ profile: registry.require('deepseek-r1'), purpose: 'train' }), true);
  assert.equal(allows({ profile: registry.require('llama-3'), purpose: 'train' }), false);
  assert.equal(allows({ profile: registry.require('mistral-api'), purpose: 'train' }), false);
  assert.equal(allows({ profile: registry.require('mistral-api'), purpose: 'serve' }), true);
});

test('an empty lineage has the permissions of the human profile', () => {
  assert.deepEqual(effective([]), permissionsOf(human));
  for (const purpose of PURPOSES) assert.equal(effective([])[purpose].verdict, 'allowed');
});

test('openai + llama-3.1: competing training is forbidden by OpenAI\'s clause; training carries Llama\'s obligations', () => {
  const permissions = effective([registry.require('openai'), registry.require('llama-3.1')]);
  assert.equal(permissions['train-competing'].verdict, 'notAllowed');
  assert.deepEqual(
    permissions['train-competing'].forbiddenBy.map(({ profile, version, clause }) => ({ profile, version, clause })),
    [{ profile: 'openai', version: '2024-01-31', clause: 'Terms of Use 2023 §2(c)(iii)' }],
  );
  assert.deepEqual(permissions['train-competing'].obligations, []);
  assert.equal(permissions.train.verdict, 'constrained');
  assert.deepEqual(
    permissions.train.obligations.map(({ obligation }) => obligation.kind).sort(),
    ['attribution', 'mau-threshold', 'name-prefix'],
  );
  assert.ok(permissions.train.obligations.every(({ imposedBy }) => imposedBy.every((source) => source.profile === 'llama-3.1')));
  assert.deepEqual(permissions.train.forbiddenBy, []);
});

test('every profile that forbids a purpose is named, with its clause', () => {
  const permissions = effective([registry.require('llama-2'), registry.require('azure-openai'), registry.require('human')]);
  const forbidders = permissions.train.forbiddenBy.map((entry) => `${entry.profile}: ${entry.clause}`);
  assert.deepEqual(forbidders, [
    'azure-openai: pending legal review (declared: Microsoft Product Terms (not verified))',
    'llama-2: Llama 2 Community License §1.b.v',
  ]);
});

test('the same obligation from two profiles is listed once, imposed by both', () => {
  const llama = registry.require('llama-3.1');
  const later = { ...llama, version: '2024-09-25' };
  const permissions = effective([llama, later]);
  const attribution = permissions.train.obligations.filter(({ obligation }) => obligation.kind === 'attribution');
  assert.equal(attribution.length, 1);
  assert.deepEqual(
    attribution[0]?.imposedBy.map((source) => source.version),
    ['2024-07-23', '2024-09-25'],
  );
});

// ---- properties

test('generated profiles are valid profiles', () => {
  fc.assert(
    fc.property(profile, ({ origin: _origin, confirmation: _confirmation, ...data }) => {
      assert.equal(termsProfileSchema.safeParse(data).success, true);
    }),
    runs,
  );
});

test('review only ever restricts: never more permissive than declared, serve untouched, training blocked until confirmed', () => {
  fc.assert(
    fc.property(profile, (generated) => {
      for (const purpose of PURPOSES) {
        const result = verdictFor({ profile: generated, purpose });
        const declared = generated.purposes[purpose];
        assert.ok(verdictRank(result.verdict) <= verdictRank(declared.verdict));
        const blocked = generated.review && generated.confirmation === null && purpose !== 'serve';
        assert.equal(result.verdict, blocked ? 'notAllowed' : declared.verdict);
      }
    }),
    runs,
  );
});

test('effective permissions are commutative (any order of the lineage)', () => {
  const lineageAndShuffle = lineage.chain((profiles) =>
    fc.tuple(fc.constant(profiles), fc.shuffledSubarray(profiles, { minLength: profiles.length, maxLength: profiles.length })),
  );
  fc.assert(
    fc.property(lineageAndShuffle, ([profiles, shuffled]) => {
      assert.deepEqual(effective(shuffled), effective(profiles));
    }),
    runs,
  );
  fc.assert(
    fc.property(lineage, lineage, (left, right) => {
      assert.deepEqual(
        combinePermissions({ left: effective(left), right: effective(right) }),
        combinePermissions({ left: effective(right), right: effective(left) }),
      );
    }),
    runs,
  );
});

test('effective permissions are associative (grouping of the lineage does not matter)', () => {
  fc.assert(
    fc.property(lineage, lineage, lineage, (first, second, third) => {
      const [a, b, c] = [effective(first), effective(second), effective(third)];
      assert.deepEqual(
        combinePermissions({ left: combinePermissions({ left: a, right: b }), right: c }),
        combinePermissions({ left: a, right: combinePermissions({ left: b, right: c }) }),
      );
      assert.deepEqual(effective([...first, ...second]), combinePermissions({ left: a, right: b }));
    }),
    runs,
  );
});

test('effective permissions are idempotent (repeating a source changes nothing)', () => {
  fc.assert(
    fc.property(lineage, (profiles) => {
      assert.deepEqual(effective([...profiles, ...profiles]), effective(profiles));
      const once = effective(profiles);
      assert.deepEqual(combinePermissions({ left: once, right: once }), once);
    }),
    runs,
  );
});

test('effective permissions are monotone: adding a profile never makes a purpose more allowed', () => {
  fc.assert(
    fc.property(anyLineage, profile, (profiles, added) => {
      const before = effective(profiles);
      const after = effective([...profiles, added]);
      for (const purpose of PURPOSES) {
        assert.ok(verdictRank(after[purpose].verdict) <= verdictRank(before[purpose].verdict), purpose);
      }
    }),
    runs,
  );
});

test('effective permissions equal the per-purpose minimum, with forbidders and obligations accounted for', () => {
  fc.assert(
    fc.property(lineage, (profiles) => {
      const permissions = effective(profiles);
      for (const purpose of PURPOSES) {
        const results = profiles.map((generated) => ({ generated, result: verdictFor({ profile: generated, purpose }) }));
        const minimum = Math.min(...results.map(({ result }) => verdictRank(result.verdict)));
        const entry = permissions[purpose];
        assert.equal(verdictRank(entry.verdict), minimum);

        const expectedForbidders = new Set(
          results
            .filter(({ result }) => result.verdict === 'notAllowed')
            .map(({ generated, result }) => `${generated.id}@${generated.version} ${result.clause}`),
        );
        assert.deepEqual(
          new Set(entry.forbiddenBy.map((source) => `${source.profile}@${source.version} ${source.clause}`)),
          expectedForbidders,
        );

        const expectedObligations =
          entry.verdict === 'notAllowed'
            ? new Set<string>()
            : new Set(results.flatMap(({ result }) => result.obligations.map((obligation) => JSON.stringify(obligation))));
        const obligations = entry.obligations.map(({ obligation }) => JSON.stringify(obligation));
        assert.equal(obligations.length, new Set(obligations).size, 'obligations are deduplicated');
        assert.deepEqual(new Set(obligations), expectedObligations);
      }
    }),
    runs,
  );
});
