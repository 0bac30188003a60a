/** Export formats and JSONL import, without a database. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRecord } from '../src/datasets/index.ts';
import { samplesFromJsonl } from '../src/datasets/import-jsonl.ts';
import { sampleFromCall } from '../src/datasets/ledger-source.ts';
import { makeCall } from './helpers/backends.ts';

const messages = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'hi' },
];

describe('export formats', () => {
  test('openai-chat appends the completion; sharegpt maps roles', () => {
    const fields = { messages, completion: { role: 'assistant', content: 'hello' }, label: 'x' };
    assert.deepEqual(formatRecord({ format: 'openai-chat', sampleId: 's', fields }), {
      record: { messages: [...messages, { role: 'assistant', content: 'hello' }] },
      fieldsUsed: ['completion', 'messages'],
    });
    assert.deepEqual(formatRecord({ format: 'sharegpt', sampleId: 's', fields }).record, {
      conversations: [
        { from: 'system', value: 'be brief' },
        { from: 'human', value: 'hi' },
        { from: 'gpt', value: 'hello' },
      ],
    });
  });

  test('openai-dpo needs preferred and non_preferred', () => {
    assert.deepEqual(formatRecord({ format: 'openai-dpo', sampleId: 's', fields: { messages, preferred: 'good', non_preferred: 'bad' } }), {
      record: { input: { messages }, preferred_output: [{ role: 'assistant', content: 'good' }], non_preferred_output: [{ role: 'assistant', content: 'bad' }] },
      fieldsUsed: ['messages', 'non_preferred', 'preferred'],
    });
    assert.throws(() => formatRecord({ format: 'openai-dpo', sampleId: 's7', fields: { messages, preferred: 'good' } }), /sample "s7" has no field "non_preferred"/);
  });

  test('alpaca reads instruction/text, input and output/label/completion, and reports only what it read', () => {
    assert.deepEqual(formatRecord({ format: 'alpaca', sampleId: 's', fields: { text: 'great film', label: 'positive' } }), {
      record: { instruction: 'great film', input: '', output: 'positive' },
      fieldsUsed: ['label', 'text'],
    });
    assert.deepEqual(formatRecord({ format: 'alpaca', sampleId: 's', fields: { messages, completion: 'hello' } }).record, { instruction: 'hi', input: '', output: 'hello' });
    assert.deepEqual(formatRecord({ format: 'alpaca', sampleId: 's', fields: { text: 'only text' } }).fieldsUsed, ['text']);
  });

  test('messages that are not chat messages are refused with the sample id', () => {
    assert.throws(() => formatRecord({ format: 'openai-chat', sampleId: 'bad', fields: { messages: ['hi'] } }), /sample "bad": messages must be/);
  });
});

describe('sample sources', () => {
  const source = { kind: 'import' as const, source: 'data.jsonl', termsProfile: 'human', termsVersion: '1' };

  test('JSONL lines become samples; ids from "id" or the line number; bad lines are named', () => {
    const samples = samplesFromJsonl({ text: '{"id":7,"text":"a"}\n\n{"text":"b","label":"x"}\n', source });
    assert.deepEqual(samples.map((sample) => [sample.id, Object.keys(sample.fields)]), [['7', ['text']], ['line-3', ['text', 'label']]]);
    assert.throws(() => samplesFromJsonl({ text: '{"text":"a"}\nnot json\n', source }), /data\.jsonl:2: not JSON/);
    assert.throws(() => samplesFromJsonl({ text: '[1]\n', source }), /data\.jsonl:1: expected a JSON object/);
  });

  test('a streamed call becomes messages plus the concatenated completion, both from the call', () => {
    const call = makeCall({
      stream: true,
      payload: {
        request: { messages },
        response: [{ choices: [{ delta: { role: 'assistant', content: 'hel' } }] }, { choices: [{ delta: { content: 'lo' } }] }, { choices: [] }],
      },
    });
    const sample = sampleFromCall(call);
    assert.deepEqual(sample.fields['completion']?.value, { role: 'assistant', content: 'hello' });
    assert.equal(sample.fields['messages']?.origin.kind, 'call');
    assert.throws(() => sampleFromCall(makeCall({ termsProfile: null, payload: { request: { messages }, response: {} } })), /no terms profile recorded/);
  });
});

test('CSV import: quoted commas, quotes and newlines survive; the header names the fields; id column optional', async () => {
  const { samplesFromCsv } = await import('../src/datasets/import-csv.ts');
  const source = { kind: 'import' as const, source: 'people.csv', termsProfile: 'human', termsVersion: '1' };
  const text = 'id,text,label\r\na,"Hello, world","say ""hi"""\r\n,"two\nlines",x\r\n';
  const samples = samplesFromCsv({ text, source });
  assert.equal(samples.length, 2);
  assert.equal(samples[0]?.id, 'a');
  assert.equal(samples[0]?.fields.text?.value, 'Hello, world');
  assert.equal(samples[0]?.fields.label?.value, 'say "hi"');
  assert.equal(samples[1]?.id, 'row-3');
  assert.equal(samples[1]?.fields.text?.value, 'two\nlines');
  assert.deepEqual(samples[1]?.fields.text?.origin, source);
  assert.throws(() => samplesFromCsv({ text: 'a,b\n1,2,3\n', source }), /people\.csv: not valid CSV/);
  assert.throws(() => samplesFromCsv({ text: 'id,text\n', source }), /no samples/);
});
