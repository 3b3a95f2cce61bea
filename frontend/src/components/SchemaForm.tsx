import { useId } from 'react';
import {
  describeBounds,
  enumOptionValue,
  validateField,
  type FieldErrors,
  type FieldSpec,
  type RawValue,
  type RawValues,
} from '../lib/schemaForm';

interface Props {
  fields: FieldSpec[];
  values: RawValues;
  errors: FieldErrors;
  onChange: (name: string, value: RawValue) => void;
  /** Called when a field loses focus with its validation message (or null). */
  onBlurValidate?: (name: string, error: string | null) => void;
  disabled?: boolean;
}

/** Renders fields generated from a JSON Schema; errors appear beside their field. */
export function SchemaFields({ fields, values, errors, onChange, onBlurValidate, disabled }: Props) {
  const base = useId();
  if (fields.length === 0) {
    return <p className="muted">This job kind takes no input.</p>;
  }
  return (
    <div className="schema-fields">
      {fields.map((f) => (
        <SchemaField
          key={f.name}
          id={`${base}-${f.name}`}
          field={f}
          value={values[f.name]}
          error={errors[f.name]}
          onChange={(v) => onChange(f.name, v)}
          onBlur={() => onBlurValidate?.(f.name, validateField(f, values[f.name]))}
          disabled={disabled}
        />
      ))}
    </div>
  );
}

function SchemaField({
  id,
  field: f,
  value,
  error,
  onChange,
  onBlur,
  disabled,
}: {
  id: string;
  field: FieldSpec;
  value: RawValue | undefined;
  error: string | undefined;
  onChange: (v: RawValue) => void;
  onBlur: () => void;
  disabled?: boolean;
}) {
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const bounds = describeBounds(f);
  const hintParts = [f.description, bounds, f.hasDefault && f.kind !== 'boolean' ? `Default: ${JSON.stringify(f.default)}` : null].filter(
    Boolean,
  ) as string[];
  const describedBy = [hintParts.length ? hintId : null, error ? errId : null].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name: f.name,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy,
    'aria-required': f.required && !f.hasDefault ? true : undefined,
    onBlur,
    disabled,
    'data-field': f.name,
  } as const;

  let control;
  if (f.kind === 'boolean') {
    control = (
      <input {...common} type="checkbox" className="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />
    );
  } else if (f.kind === 'enum') {
    control = (
      <select {...common} className="input" value={typeof value === 'string' ? value : ''} onChange={(e) => onChange(e.target.value)}>
        {(!f.required || !f.hasDefault) && <option value="">{f.required ? 'Choose…' : '(not set)'}</option>}
        {(f.enumValues ?? []).map((v) => (
          <option key={enumOptionValue(v)} value={enumOptionValue(v)}>
            {String(v)}
          </option>
        ))}
      </select>
    );
  } else if (f.kind === 'json') {
    control = (
      <textarea
        {...common}
        className="input mono"
        rows={4}
        spellCheck={false}
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value)}
        placeholder="JSON value"
      />
    );
  } else if (f.kind === 'integer' || f.kind === 'number') {
    control = (
      <input
        {...common}
        className="input"
        type="number"
        inputMode={f.kind === 'integer' ? 'numeric' : 'decimal'}
        step={f.multipleOf ?? (f.kind === 'integer' ? 1 : 'any')}
        min={f.minimum ?? undefined}
        max={f.maximum ?? undefined}
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  } else {
    const long = (f.maxLength ?? 0) > 200;
    control = long ? (
      <textarea {...common} className="input" rows={3} value={typeof value === 'string' ? value : ''} onChange={(e) => onChange(e.target.value)} />
    ) : (
      <input
        {...common}
        className="input"
        type={f.format === 'email' ? 'email' : f.format === 'uri' ? 'url' : 'text'}
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }

  return (
    <div className={`field ${error ? 'field-invalid' : ''} ${f.kind === 'boolean' ? 'field-check' : ''}`} data-field-wrapper={f.name}>
      <label htmlFor={id} className="field-label">
        {f.label}
        {f.required && !f.hasDefault && (
          <span className="req" aria-hidden="true">
            {' '}
            *
          </span>
        )}
        <span className="field-type">{f.kind === 'enum' ? 'choice' : f.kind}</span>
      </label>
      {control}
      {hintParts.length > 0 && (
        <p id={hintId} className="field-hint">
          {hintParts.join(' · ')}
        </p>
      )}
      {error && (
        <p id={errId} className="field-error" role="alert" data-field-error={f.name}>
          {error}
        </p>
      )}
    </div>
  );
}
