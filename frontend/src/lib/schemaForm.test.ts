import { describe, expect, it } from 'vitest';
import { buildPayload, describeBounds, initialValues, mapApiFieldErrors, parseSchema, validateField } from './schemaForm';

// What pydantic v2 emits for:
//   class Color(str, Enum): red = 'red'; green = 'green'
//   class SleepInput(BaseModel):
//       steps: int = Field(10, ge=1, le=100, description='How many steps')
//       stepSeconds: float = Field(0.1, gt=0, le=5)
//       label: str | None = None
//       loud: bool = False
//       color: Color = Color.red
//       name: str = Field(min_length=2, max_length=8)
//       ratio: Optional[float] = Field(None, ge=0, le=1)
const pydanticSchema = {
  $defs: { Color: { enum: ['red', 'green'], title: 'Color', type: 'string' } },
  properties: {
    steps: { default: 10, description: 'How many steps', maximum: 100, minimum: 1, title: 'Steps', type: 'integer' },
    stepSeconds: { default: 0.1, exclusiveMinimum: 0, maximum: 5, title: 'Stepseconds', type: 'number' },
    label: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null, title: 'Label' },
    loud: { default: false, title: 'Loud', type: 'boolean' },
    color: { $ref: '#/$defs/Color', default: 'red' },
    name: { maxLength: 8, minLength: 2, title: 'Name', type: 'string' },
    ratio: { anyOf: [{ maximum: 1, minimum: 0, type: 'number' }, { type: 'null' }], default: null, title: 'Ratio' },
    tags: { items: { type: 'string' }, type: 'array', title: 'Tags' },
  },
  required: ['name'],
  title: 'SleepInput',
  type: 'object',
};

describe('parseSchema', () => {
  const fields = parseSchema(pydanticSchema);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));

  it('keeps declaration order and maps types', () => {
    expect(fields.map((f) => f.name)).toEqual(['steps', 'stepSeconds', 'label', 'loud', 'color', 'name', 'ratio', 'tags']);
    expect(fields.map((f) => f.kind)).toEqual(['integer', 'number', 'string', 'boolean', 'enum', 'string', 'number', 'json']);
  });

  it('reads bounds, defaults, required and descriptions', () => {
    expect(byName.steps).toMatchObject({ minimum: 1, maximum: 100, default: 10, hasDefault: true, required: false, description: 'How many steps' });
    expect(byName.stepSeconds).toMatchObject({ exclusiveMinimum: 0, maximum: 5 });
    expect(byName.name).toMatchObject({ required: true, hasDefault: false, minLength: 2, maxLength: 8 });
  });

  it('unwraps Optional (anyOf with null) and resolves $ref enums', () => {
    expect(byName.label).toMatchObject({ kind: 'string', nullable: true });
    expect(byName.ratio).toMatchObject({ kind: 'number', nullable: true, minimum: 0, maximum: 1 });
    expect(byName.color).toMatchObject({ kind: 'enum', enumValues: ['red', 'green'], default: 'red' });
  });

  it('derives labels from field names when there is no useful title', () => {
    const [f] = parseSchema({ properties: { stepSeconds: { type: 'number' } } });
    expect(f!.label).toBe('Step Seconds');
    const [g, h] = parseSchema({ properties: { failTimes: { type: 'integer', title: 'Failtimes' }, n: { type: 'integer', title: 'How many' } } });
    expect(g!.label).toBe('Fail Times');
    expect(h!.label).toBe('How many');
  });

  it('returns no fields for non-object input', () => {
    expect(parseSchema(null)).toEqual([]);
    expect(parseSchema({ type: 'object' })).toEqual([]);
  });

  it('supports pydantic v1 style allOf refs', () => {
    const [f] = parseSchema({
      definitions: { Mode: { enum: ['a', 'b'], type: 'string' } },
      properties: { mode: { allOf: [{ $ref: '#/definitions/Mode' }], default: 'a' } },
    });
    expect(f).toMatchObject({ kind: 'enum', enumValues: ['a', 'b'], default: 'a' });
  });
});

describe('values and validation', () => {
  const fields = parseSchema(pydanticSchema);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));

  it('fills defaults', () => {
    expect(initialValues(fields)).toMatchObject({ steps: '10', stepSeconds: '0.1', label: '', loud: false, color: '"red"', name: '' });
  });

  it('prefills from an earlier payload (run again)', () => {
    const v = initialValues(fields, { steps: 7, loud: true, color: 'green', name: 'again' });
    expect(v).toMatchObject({ steps: '7', loud: true, color: '"green"', name: 'again', stepSeconds: '0.1' });
    expect(buildPayload(fields, v).payload).toEqual({ steps: 7, stepSeconds: 0.1, loud: true, color: 'green', name: 'again' });
  });

  it('validates integers, bounds and exclusive bounds', () => {
    expect(validateField(byName.steps!, '5')).toBeNull();
    expect(validateField(byName.steps!, '0')).toBe('Must be at least 1');
    expect(validateField(byName.steps!, '101')).toBe('Must be at most 100');
    expect(validateField(byName.steps!, '2.5')).toBe('Enter a whole number');
    expect(validateField(byName.steps!, 'abc')).toBe('Enter a whole number');
    expect(validateField(byName.stepSeconds!, '0')).toBe('Must be greater than 0');
    expect(validateField(byName.stepSeconds!, '0.05')).toBeNull();
  });

  it('validates required and string length', () => {
    expect(validateField(byName.name!, '')).toBe('Required');
    expect(validateField(byName.name!, 'a')).toBe('Must be at least 2 characters');
    expect(validateField(byName.name!, 'abcdefghi')).toBe('Must be at most 8 characters');
  });

  it('builds a typed payload and omits empty optional fields', () => {
    const values = { ...initialValues(fields), name: 'job', steps: '3', loud: true, color: '"green"' };
    const { payload, errors } = buildPayload(fields, values);
    expect(errors).toEqual({});
    expect(payload).toEqual({ steps: 3, stepSeconds: 0.1, loud: true, color: 'green', name: 'job' });
  });

  it('reports every invalid field', () => {
    const values = { ...initialValues(fields), steps: '0', tags: '[oops' };
    const { errors } = buildPayload(fields, values);
    expect(errors).toEqual({ steps: 'Must be at least 1', name: 'Required', tags: 'Enter valid JSON' });
  });

  it('sends values as typed when browser validation is off', () => {
    const values = { ...initialValues(fields), steps: '0', name: 'x' };
    const { payload, errors } = buildPayload(fields, values, { validate: false });
    expect(errors).toEqual({});
    expect(payload).toMatchObject({ steps: 0, name: 'x' });
  });

  it('describes bounds', () => {
    expect(describeBounds(byName.steps!)).toBe('1 – 100');
    expect(describeBounds(byName.stepSeconds!)).toBe('> 0, ≤ 5');
    expect(describeBounds(byName.loud!)).toBeNull();
  });
});

describe('mapApiFieldErrors', () => {
  const fields = parseSchema(pydanticSchema);
  it('maps payload field paths onto fields, with or without a payload prefix', () => {
    expect(
      mapApiFieldErrors(fields, [
        { path: ['steps'], message: 'Input should be greater than or equal to 1' },
        { path: ['payload', 'name'], message: 'Field required' },
      ]),
    ).toEqual({ steps: 'Input should be greater than or equal to 1', name: 'Field required' });
  });
  it('keeps nested paths and unmatched errors', () => {
    expect(
      mapApiFieldErrors(fields, [
        { path: ['tags', '0'], message: 'bad tag' },
        { path: ['extra'], message: 'Extra inputs are not permitted' },
        { path: [], message: 'whole payload bad' },
      ]),
    ).toEqual({ tags: 'bad tag (0)', '': 'extra: Extra inputs are not permitted; whole payload bad' });
  });
});
