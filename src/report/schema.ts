/**
 * Report schemas (src/schemas/*.json, draft-07, strict): one compiled validator per schema, and
 * E_SCHEMA errors that list what does not match. A report failing its own schema is a bug in gpt.
 */
import type Ajv from 'ajv';
import type { Options } from 'ajv';
import { GptError } from '../errors';

/** A new ajv instance; ajv is required here, on first validation, not when gpt starts (~100 ms). */
export function newAjv(options: Options): Ajv {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { default: AjvClass } = require('ajv') as typeof import('ajv');
  return new AjvClass(options);
}

export function reportValidator<T>(schema: object, what: string): (report: unknown) => asserts report is T {
  let compiled: ReturnType<Ajv['compile']> | undefined;
  return (report: unknown) => {
    compiled ??= newAjv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
    // check the report as its JSON text reads back (undefined fields dropped, as in --json output)
    if (compiled(JSON.parse(JSON.stringify(report)))) return;
    const problems = (compiled.errors ?? []).slice(0, 5).map((e) => {
      const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : '';
      return `${e.instancePath || '(the report)'} ${e.message}${extra}`;
    });
    throw new GptError('E_SCHEMA', `the ${what} report does not match its schema: ${problems.join('; ')}`, {
      hint: 'this is a bug in gpt; please report it with the model',
    });
  };
}
