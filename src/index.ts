/**
 * gpt's public API: ONNX bytes -> IR -> analysis -> passes -> profile.
 */
export { GptError, isGptError } from './errors';
export type { ErrorCode } from './errors';

// ONNX I/O
export { loadModel, saveModel, saveModelToBuffer } from './onnx/io';
export type { LoadOptions, SaveOptions } from './onnx/io';
export { DataType, AttributeType } from './onnx/schema';
export type {
  ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TypeProtoTensor,
  TensorShapeProto, DimensionProto, OperatorSetIdProto, StringStringEntryProto, Unknowns,
} from './onnx/schema';
export type { Int64 } from './onnx/wire';

// IR
export { Graph, Node, Value } from './ir/graph';
export type { Dim, TensorType, AttrValue, InitializerOptions, NodeSpecInit, Use } from './ir/graph';
export { Model } from './ir/model';
export { Tensor } from './ir/tensor';
export type { ExternalLocation, TypedArray } from './ir/tensor';
export { validateGraph, assertValid } from './ir/validate';
export type { Problem } from './ir/validate';

// the op registry
export { opInfo, nodeOp, registeredOps, registerOp, readActivation } from './ops';
export type { ActivationParams, ActivationSpec, ChannelFlow, OpInfo, OpSpec, MacContext, MacRule, ShapeRule } from './ops';
export type { ShapeContext, Out as ShapeOutput } from './analysis/shapes/context';

// analysis
export { inferShapes } from './analysis/shapes';
export type { InferShapesOptions, InferShapesResult } from './analysis/shapes';
export { costModel } from './analysis/cost';
export type { CostReport, CostOptions, CostTotals, NodeCost } from './analysis/cost';
export { inspect, formatInspect, validateInspectReport } from './analysis/inspect';
export type { InspectReport, TensorSummary } from './analysis/inspect';
export { analyze, analyzeModel } from './analysis/analyze';
export { validateAnalyzeReport } from './report/analyze-report';
export type { AnalyzeReport, AnalyzeOptions, AnalyzeResult, StageAnalysis } from './analysis/analyze';
export { recognizeDetector, detectorReport } from './analysis/detector';
export type { DetectorStructure, DetectorReport, DetectorOptions, NeckBlock, NeckPath, PartFigures, Tap } from './analysis/detector';
export type { FpnLevel } from './analysis/detector-fpn';
export { recognize } from './analysis/structure';
export type { RecognizeOptions, RecognizedStage } from './analysis/structure';
export type { Structure, Stage, Block, Coverage, CrossStagePartial } from './analysis/structure-types';
export { loadRules, validateRuleFile, listRules } from './analysis/rules';
export type { Rule, RuleKind, RulePart, Role, Family, Element, Alternative, AttrConstraint, ChannelConstraint } from './analysis/rules';
export { gradientPaths } from './analysis/gradient-path';
export type { GradientPathReport, GradientPathSummary, LayerGradientPaths, GradientPathOptions, StageGradientPaths, StageSpec } from './analysis/gradient-path';
export { gradientPathChart, chartSeries } from './analysis/chart';
export type { ChartSeries, ChartOptions, ChartLayer, ChartStage } from './analysis/chart';

// passes
export { convert } from './passes/convert';
export type {
  ConvertOptions, ConvertReport, ConvertResult, ConvertTarget, CommonOptions, PrnConvertOptions, CspConvertOptions, ElanConvertOptions, CspSplitOptions,
  ModelMetrics, StageMetrics,
} from './passes/convert';
export type { Fusion, MergeOp, Parts, PrnEmit, SplitOp } from './passes/options';
export { validateConvertReport } from './report/convert-report';
export type { ReportEnvelope, ReportKind } from './report/envelope';

// profile
export { profile, validateProfileReport } from './profile';
export type { ProfileOptions, ProfileReport, ModelProfile, ModelRun } from './profile';
export type { LatencyStats } from './profile/measure';
export type { StopReason } from './profile/stats';
export type { PerNodeReport, TimeShare } from './profile/node-profile';
export type { EpName, ProviderStatus, ProviderEnvironment } from './profile/providers';
export { profileHtml } from './report/html';
// verify
export { verify, validateVerifyReport } from './verify';
export type { VerifyOptions, VerifyReport, VerifySource, OutputVerification, OutputDiff } from './verify';
export type { NpyArray } from './onnx/npy';
export type { HtmlOptions } from './report/html';

// export to PyTorch
export { exportPytorch, writePytorchExport } from './export/pytorch';
export type { ExportPytorchOptions, ExportPytorchResult } from './export/pytorch';
export type { BnMode } from './export/bn-unfold';
export { writeSafetensors, readSafetensors } from './export/safetensors';
export type { NamedTensor } from './export/safetensors';

// samples
export { buildSample, SAMPLE_NAMES, DETECTOR_SAMPLE_NAMES, ALL_SAMPLE_NAMES } from './samples';
export type { SampleName, DetectorSampleName, SampleOptions } from './samples';
