/** The analysis report's JSON form: schema validation (src/schemas/analyze.schema.json). */
import type { AnalyzeReport } from '../analysis/analyze';
import schema from '../schemas/analyze.schema.json';
import { reportValidator } from './schema';

export const validateAnalyzeReport: (report: unknown) => asserts report is AnalyzeReport = reportValidator<AnalyzeReport>(schema, 'analyze');
