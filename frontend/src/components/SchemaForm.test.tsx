import { describe, expect, it } from 'vitest';
import { useState } from 'react';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { SchemaFields } from './SchemaForm';
import { buildPayload, initialValues, parseSchema, type FieldErrors } from '../lib/schemaForm';

const schema = {
  properties: {
    steps: { type: 'integer', minimum: 1, maximum: 50, default: 5, title: 'Steps', description: 'Number of steps' },
    stepSeconds: { type: 'number', exclusiveMinimum: 0, default: 0.5, title: 'Step seconds' },
    mode: { enum: ['fast', 'slow'], default: 'fast', title: 'Mode' },
    dryRun: { type: 'boolean', default: false, title: 'Dry run' },
    note: { type: 'string', title: 'Note' },
  },
  required: ['note'],
};

function Harness({ onSubmit }: { onSubmit: (p: Record<string, unknown>) => void }) {
  const fields = parseSchema(schema);
  const [values, setValues] = useState(() => initialValues(fields));
  const [errors, setErrors] = useState<FieldErrors>({});
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const r = buildPayload(fields, values);
        setErrors(r.errors);
        if (!Object.keys(r.errors).length) onSubmit(r.payload);
      }}
    >
      <SchemaFields
        fields={fields}
        values={values}
        errors={errors}
        onChange={(n, v) => setValues((p) => ({ ...p, [n]: v }))}
        onBlurValidate={(n, err) => setErrors(({ [n]: _d, ...rest }) => (err ? { ...rest, [n]: err } : rest))}
      />
      <button type="submit">Go</button>
    </form>
  );
}

describe('<SchemaFields>', () => {
  it('renders labelled controls of the right type with defaults and hints', () => {
    render(<Harness onSubmit={() => {}} />);
    const steps = screen.getByLabelText<HTMLInputElement>(/^Steps/);
    expect(steps.type).toBe('number');
    expect(steps.value).toBe('5');
    expect(steps.min).toBe('1');
    expect(steps.max).toBe('50');
    expect(screen.getByText(/Number of steps · 1 – 50 · Default: 5/)).toBeInTheDocument();
    expect(screen.getByLabelText<HTMLSelectElement>(/^Mode/).tagName).toBe('SELECT');
    expect(screen.getByLabelText<HTMLInputElement>(/^Dry run/i).type).toBe('checkbox');
    expect(screen.getByLabelText(/^Note/)).toHaveAttribute('aria-required', 'true');
  });

  it('shows errors beside the field and links them with aria-describedby', async () => {
    const user = userEvent.setup();
    render(<Harness onSubmit={() => {}} />);
    const steps = screen.getByLabelText(/^Steps/);
    await user.clear(steps);
    await user.type(steps, '99');
    await user.click(screen.getByRole('button', { name: 'Go' }));
    const err = screen.getByText('Must be at most 50');
    expect(steps).toHaveAttribute('aria-invalid', 'true');
    expect(steps.getAttribute('aria-describedby')).toContain(err.id);
    expect(screen.getByText('Required')).toBeInTheDocument();
  });

  it('validates on blur', async () => {
    const user = userEvent.setup();
    render(<Harness onSubmit={() => {}} />);
    const secs = screen.getByLabelText(/^Step seconds/i);
    await user.clear(secs);
    await user.type(secs, '0');
    await user.tab();
    expect(screen.getByText('Must be greater than 0')).toBeInTheDocument();
  });

  it('submits a typed payload', async () => {
    const user = userEvent.setup();
    let got: Record<string, unknown> | null = null;
    render(<Harness onSubmit={(p) => (got = p)} />);
    await user.type(screen.getByLabelText(/^Note/), 'hello');
    await user.selectOptions(screen.getByLabelText(/^Mode/), 'slow');
    await user.click(screen.getByLabelText(/^Dry run/i));
    await user.click(screen.getByRole('button', { name: 'Go' }));
    expect(got).toEqual({ steps: 5, stepSeconds: 0.5, mode: 'slow', dryRun: true, note: 'hello' });
  });
});
