/**
 * The fields every JSON report starts with, whichever command or function made it: which tool and
 * version wrote it, the schema it follows (the `$id` of a file in src/schemas/, shipped as
 * `gpt-gradient-path/schemas/<kind>.schema.json`) and its kind.
 */
import { TOOL_VERSION } from '../version';

export type ReportKind = 'inspect' | 'analyze' | 'analyze-comparison' | 'convert' | 'profile' | 'sample' | 'rules' | 'rule-check' | 'version' | 'verify';

export interface ReportEnvelope<K extends ReportKind = ReportKind> {
  tool: 'gpt';
  version: string;
  /** The `$id` of the report's JSON Schema. */
  $schema: string;
  kind: K;
}

export const SCHEMA_ID_BASE = 'https://gpt.local/schemas/';

export function envelope<K extends ReportKind>(kind: K): ReportEnvelope<K> {
  return { tool: 'gpt', version: TOOL_VERSION, $schema: `${SCHEMA_ID_BASE}${kind}.schema.json`, kind };
}
