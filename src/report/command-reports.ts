/**
 * The JSON reports of the smaller commands (sample, rules list, rules validate) and of analyze on
 * several models: their types and schema checks. The big reports live beside the code that builds
 * them (inspect, analyze, convert, profile).
 */
import analyzeComparisonSchema from '../schemas/analyze-comparison.schema.json';
import ruleCheckSchema from '../schemas/rule-check.schema.json';
import rulesSchema from '../schemas/rules.schema.json';
import sampleSchema from '../schemas/sample.schema.json';
import versionSchema from '../schemas/version.schema.json';
import type { AnalyzeReport } from '../analysis/analyze';
import type { Family, RuleKind } from '../analysis/rules';
import { ReportEnvelope } from './envelope';
import { reportValidator } from './schema';

export interface SampleReport extends ReportEnvelope<'sample'> {
  name: string;
  file: string;
  bytes: number;
  externalFile: string | null;
  externalBytes: number | null;
}

export interface RulesReport extends ReportEnvelope<'rules'> {
  rules: { name: string; kind: RuleKind; family: Family | null; description: string; file: string }[];
}

export interface RuleCheckReport extends ReportEnvelope<'rule-check'> {
  file: string;
  rule: string;
  ruleKind: RuleKind;
}

export interface VersionReport extends ReportEnvelope<'version'> {
  node: string;
  platform: string;
  arch: string;
  /** The installed onnxruntime-node (an optional peer), or null. */
  onnxruntime: string | null;
}

export interface AnalyzeComparisonReport extends ReportEnvelope<'analyze-comparison'> {
  models: AnalyzeReport[];
}

export const validateSampleReport: (report: unknown) => asserts report is SampleReport = reportValidator<SampleReport>(sampleSchema, 'sample');
export const validateRulesReport: (report: unknown) => asserts report is RulesReport = reportValidator<RulesReport>(rulesSchema, 'rules list');
export const validateRuleCheckReport: (report: unknown) => asserts report is RuleCheckReport = reportValidator<RuleCheckReport>(ruleCheckSchema, 'rules validate');
export const validateAnalyzeComparisonReport: (report: unknown) => asserts report is AnalyzeComparisonReport = reportValidator<AnalyzeComparisonReport>(analyzeComparisonSchema, 'analyze comparison');
export const validateVersionReport: (report: unknown) => asserts report is VersionReport = reportValidator<VersionReport>(versionSchema, 'version');
