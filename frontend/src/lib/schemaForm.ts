// Turns a job kind's input JSON Schema (as produced by pydantic v2's
// `model_json_schema()`) into form fields, validates raw form values, and builds
// the JSON payload. Pure functions only; the React side is in components/SchemaForm.

export type FieldKind = 'integer' | 'number' | 'string' | 'boolean' | 'enum' | 'json';

export interface FieldSpec {
  name: string;
  label: string;
  description?: string;
  kind: FieldKind;
  required: boolean;
  nullable: boolean;
  default?: unknown;
  hasDefault: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enumValues?: Array<string | number | boolean | null>;
}

/** Raw value held by an input: text for text-like inputs, boolean for checkboxes. */
export type RawValue = string | boolean;
export type RawValues = Record<string, RawValue>;
export type FieldErrors = Record<string, string>;

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function resolveRef(root: Json, ref: string): Json | undefined {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObj(node)) return undefined;
    node = node[part];
  }
  return isObj(node) ? node : undefined;
}

/** Inline $ref and single-element allOf wrappers; merges the referencing node's own keys on top. */
function deref(root: Json, node: Json, depth = 0): Json {
  if (depth > 20) return node;
  if (typeof node.$ref === 'string') {
    const target = resolveRef(root, node.$ref);
    const { $ref: _ignored, ...rest } = node;
    return target ? deref(root, { ...target, ...rest }, depth + 1) : rest;
  }
  if (Array.isArray(node.allOf) && node.allOf.length === 1 && isObj(node.allOf[0])) {
    const { allOf, ...rest } = node;
    return deref(root, { ...deref(root, allOf[0] as Json, depth + 1), ...rest }, depth + 1);
  }
  return node;
}

function titleCase(name: string): string {
  const spaced = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

/**
 * pydantic titles camelCase aliases as "Stepseconds"; when the title is just the
 * field name re-cased, derive a readable label from the name instead.
 */
function labelFor(name: string, title: unknown): string {
  if (typeof title !== 'string' || !title.trim()) return titleCase(name);
  const squash = (x: string) => x.replace(/[\s_-]+/g, '').toLowerCase();
  return squash(title) === squash(name) ? titleCase(name) : title;
}

function fieldFromSchema(root: Json, name: string, rawProp: Json, required: boolean): FieldSpec {
  let prop = deref(root, rawProp);
  let nullable = false;
  // Optional[X] is `anyOf: [X, {type: null}]` in pydantic v2.
  const alts = Array.isArray(prop.anyOf) ? prop.anyOf : Array.isArray(prop.oneOf) ? prop.oneOf : null;
  if (alts) {
    const nonNull = alts.filter((a): a is Json => isObj(a) && a.type !== 'null');
    nullable = nonNull.length < alts.length;
    if (nonNull.length === 1) {
      const { anyOf: _a, oneOf: _o, ...outer } = prop;
      prop = { ...deref(root, nonNull[0]!), ...outer };
    }
  }
  let type = prop.type;
  if (Array.isArray(type)) {
    nullable = nullable || type.includes('null');
    const nonNull = type.filter((t) => t !== 'null');
    type = nonNull.length === 1 ? nonNull[0] : undefined;
  }

  const spec: FieldSpec = {
    name,
    label: labelFor(name, prop.title),
    kind: 'json',
    required,
    nullable,
    hasDefault: 'default' in prop,
  };
  if (typeof prop.description === 'string') spec.description = prop.description;
  if ('default' in prop) spec.default = prop.default;

  if (Array.isArray(prop.enum)) {
    spec.kind = 'enum';
    spec.enumValues = prop.enum as FieldSpec['enumValues'];
  } else if ('const' in prop) {
    spec.kind = 'enum';
    spec.enumValues = [prop.const as string];
  } else if (type === 'integer' || type === 'number') {
    spec.kind = type;
  } else if (type === 'string') {
    spec.kind = 'string';
  } else if (type === 'boolean') {
    spec.kind = 'boolean';
  }

  const min = num(prop.minimum);
  const max = num(prop.maximum);
  const emin = num(prop.exclusiveMinimum);
  const emax = num(prop.exclusiveMaximum);
  if (min !== undefined) spec.minimum = min;
  if (max !== undefined) spec.maximum = max;
  if (emin !== undefined) spec.exclusiveMinimum = emin;
  if (emax !== undefined) spec.exclusiveMaximum = emax;
  const mult = num(prop.multipleOf);
  if (mult !== undefined) spec.multipleOf = mult;
  const minLen = num(prop.minLength);
  const maxLen = num(prop.maxLength);
  if (minLen !== undefined) spec.minLength = minLen;
  if (maxLen !== undefined) spec.maxLength = maxLen;
  if (typeof prop.pattern === 'string') spec.pattern = prop.pattern;
  if (typeof prop.format === 'string') spec.format = prop.format;
  return spec;
}

/** Fields of an object schema, in declaration order. Unknown shapes become JSON fields. */
export function parseSchema(schema: unknown): FieldSpec[] {
  if (!isObj(schema)) return [];
  const root = schema;
  const top = deref(root, root);
  const props = isObj(top.properties) ? top.properties : {};
  const required = new Set(Array.isArray(top.required) ? (top.required as string[]) : []);
  return Object.entries(props)
    .filter((entry): entry is [string, Json] => isObj(entry[1]))
    .map(([name, prop]) => fieldFromSchema(root, name, prop, required.has(name)));
}

function rawFromValue(field: FieldSpec, value: unknown): RawValue {
  if (field.kind === 'boolean') return value === true;
  if (value === undefined || value === null) return '';
  if (field.kind === 'enum') return JSON.stringify(value);
  if (field.kind === 'json') return JSON.stringify(value, null, 2);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Initial raw values: from `payload` where it has the field (e.g. "run again"),
 * else the schema default, else empty.
 */
export function initialValues(fields: FieldSpec[], payload?: unknown): RawValues {
  const given = isObj(payload) ? payload : {};
  const out: RawValues = {};
  for (const f of fields) {
    const v = f.name in given ? given[f.name] : f.hasDefault ? f.default : undefined;
    out[f.name] = rawFromValue(f, v);
  }
  return out;
}

/** The encoded value of an enum option, used as <option value>. */
export function enumOptionValue(v: string | number | boolean | null): string {
  return JSON.stringify(v);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12)));
}

/** Human summary of numeric bounds, e.g. "1 – 100" or "> 0". */
export function describeBounds(f: FieldSpec): string | null {
  const lo =
    f.minimum !== undefined ? `≥ ${fmt(f.minimum)}` : f.exclusiveMinimum !== undefined ? `> ${fmt(f.exclusiveMinimum)}` : null;
  const hi =
    f.maximum !== undefined ? `≤ ${fmt(f.maximum)}` : f.exclusiveMaximum !== undefined ? `< ${fmt(f.exclusiveMaximum)}` : null;
  if (f.minimum !== undefined && f.maximum !== undefined) return `${fmt(f.minimum)} – ${fmt(f.maximum)}`;
  if (lo && hi) return `${lo}, ${hi}`;
  if (lo) return lo;
  if (hi) return hi;
  if (f.minLength !== undefined && f.maxLength !== undefined) return `${f.minLength}–${f.maxLength} characters`;
  if (f.minLength !== undefined) return `at least ${f.minLength} characters`;
  if (f.maxLength !== undefined) return `at most ${f.maxLength} characters`;
  return null;
}

type Parsed = { ok: true; value: unknown; omit?: boolean } | { ok: false; error: string };

function parseField(f: FieldSpec, raw: RawValue | undefined): Parsed {
  if (f.kind === 'boolean') return { ok: true, value: raw === true };
  const text = typeof raw === 'string' ? raw : '';
  if (text.trim() === '') {
    if (f.required && !f.hasDefault) return { ok: false, error: 'Required' };
    if (f.required && f.hasDefault) return { ok: true, value: f.default };
    return { ok: true, value: undefined, omit: true };
  }
  switch (f.kind) {
    case 'integer':
    case 'number': {
      const t = text.trim();
      const n = Number(t);
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) || !Number.isFinite(n)) {
        return { ok: false, error: f.kind === 'integer' ? 'Enter a whole number' : 'Enter a number' };
      }
      if (f.kind === 'integer' && !Number.isInteger(n)) return { ok: false, error: 'Enter a whole number' };
      if (f.minimum !== undefined && n < f.minimum) return { ok: false, error: `Must be at least ${fmt(f.minimum)}` };
      if (f.maximum !== undefined && n > f.maximum) return { ok: false, error: `Must be at most ${fmt(f.maximum)}` };
      if (f.exclusiveMinimum !== undefined && n <= f.exclusiveMinimum)
        return { ok: false, error: `Must be greater than ${fmt(f.exclusiveMinimum)}` };
      if (f.exclusiveMaximum !== undefined && n >= f.exclusiveMaximum)
        return { ok: false, error: `Must be less than ${fmt(f.exclusiveMaximum)}` };
      if (f.multipleOf !== undefined && f.multipleOf > 0) {
        const q = n / f.multipleOf;
        if (Math.abs(q - Math.round(q)) > 1e-9) return { ok: false, error: `Must be a multiple of ${fmt(f.multipleOf)}` };
      }
      return { ok: true, value: n };
    }
    case 'string': {
      if (f.minLength !== undefined && text.length < f.minLength)
        return { ok: false, error: `Must be at least ${f.minLength} characters` };
      if (f.maxLength !== undefined && text.length > f.maxLength)
        return { ok: false, error: `Must be at most ${f.maxLength} characters` };
      if (f.pattern) {
        try {
          if (!new RegExp(f.pattern, 'u').test(text)) return { ok: false, error: `Must match ${f.pattern}` };
        } catch {
          /* pattern not valid in JS: leave it to the server */
        }
      }
      return { ok: true, value: text };
    }
    case 'enum': {
      try {
        const v = JSON.parse(text) as unknown;
        if (f.enumValues && !f.enumValues.some((e) => e === v)) return { ok: false, error: 'Choose one of the options' };
        return { ok: true, value: v };
      } catch {
        return { ok: false, error: 'Choose one of the options' };
      }
    }
    case 'json': {
      try {
        return { ok: true, value: JSON.parse(text) as unknown };
      } catch {
        return { ok: false, error: 'Enter valid JSON' };
      }
    }
  }
}

/** Validate one field's raw value; null when valid. */
export function validateField(f: FieldSpec, raw: RawValue | undefined): string | null {
  const r = parseField(f, raw);
  return r.ok ? null : r.error;
}

export interface BuildResult {
  payload: Record<string, unknown>;
  errors: FieldErrors;
}

/**
 * Build the payload. With `validate: false`, values that cannot be parsed are sent
 * as typed text so the server's own validation (InvalidInput.fieldErrors) answers.
 */
export function buildPayload(fields: FieldSpec[], values: RawValues, opts: { validate?: boolean } = {}): BuildResult {
  const validate = opts.validate ?? true;
  const payload: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  for (const f of fields) {
    const raw = values[f.name];
    const r = parseField(f, raw);
    if (r.ok) {
      if (!r.omit) payload[f.name] = r.value;
      continue;
    }
    if (validate) {
      errors[f.name] = r.error;
    } else if (typeof raw === 'string' && raw.trim() !== '') {
      const n = Number(raw);
      payload[f.name] = (f.kind === 'integer' || f.kind === 'number') && Number.isFinite(n) ? n : raw;
    }
  }
  return { payload, errors };
}

/**
 * Map API field errors (path = payload field names, maybe prefixed with "payload"
 * or "input") onto form fields. Errors whose path matches no field are returned
 * under the key "" so they can be shown above the form.
 */
export function mapApiFieldErrors(
  fields: FieldSpec[],
  apiErrors: ReadonlyArray<{ path: ReadonlyArray<string>; message: string }>,
): FieldErrors {
  const names = new Set(fields.map((f) => f.name));
  const out: FieldErrors = {};
  for (const e of apiErrors) {
    let path = [...e.path];
    while (path.length && (path[0] === 'input' || path[0] === 'payload') && !names.has(path[0])) path = path.slice(1);
    const key = path.length && names.has(path[0]!) ? path[0]! : '';
    const suffix = key && path.length > 1 ? ` (${path.slice(1).join('.')})` : '';
    const msg = key ? `${e.message}${suffix}` : path.length ? `${path.join('.')}: ${e.message}` : e.message;
    out[key] = out[key] ? `${out[key]}; ${msg}` : msg;
  }
  return out;
}
