/**
 * The ONNX protobuf schema (onnx/onnx.proto, ONNX 1.17, IR 10), as data for the codec in codec.ts.
 * Field numbers follow onnx.proto. Messages the toolkit never edits (functions, training info, sparse
 * tensors, non-tensor types) are kept as opaque bytes ('raw'): carried through untouched.
 * Fields not listed here are still kept, as unknown fields, byte for byte.
 */
import type { Int64 } from './wire';

export type FieldKind = 'int64' | 'int32' | 'uint64' | 'enum' | 'float' | 'double' | 'string' | 'bytes' | 'message' | 'raw';

export interface FieldSpec {
  no: number;
  name: string;
  kind: FieldKind;
  repeated?: boolean;
  packed?: boolean;
  message?: () => MessageSpec;
}

export interface MessageSpec {
  name: string;
  fields: FieldSpec[];
  /** Filled in lazily by the codec: field number -> spec, and the fields in field-number order. */
  byNo?: Map<number, FieldSpec>;
  ordered?: FieldSpec[];
}

/** Every decoded message keeps the exact bytes of fields the schema does not know. */
export interface Unknowns {
  $unknown?: Uint8Array[];
}

export interface StringStringEntryProto extends Unknowns {
  key?: string;
  value?: string;
}
export interface OperatorSetIdProto extends Unknowns {
  domain?: string;
  version?: Int64;
}
export interface DimensionProto extends Unknowns {
  dimValue?: Int64;
  dimParam?: string;
  denotation?: string;
}
export interface TensorShapeProto extends Unknowns {
  dim: DimensionProto[];
}
export interface TypeProtoTensor extends Unknowns {
  elemType?: number;
  shape?: TensorShapeProto;
}
export interface TypeProto extends Unknowns {
  tensorType?: TypeProtoTensor;
  sequenceType?: Uint8Array;
  mapType?: Uint8Array;
  optionalType?: Uint8Array;
  sparseTensorType?: Uint8Array;
  denotation?: string;
}
export interface ValueInfoProto extends Unknowns {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}
export interface TensorProto extends Unknowns {
  dims: Int64[];
  dataType?: number;
  segment?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: Int64[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData: StringStringEntryProto[];
  dataLocation?: number;
  doubleData: number[];
  uint64Data: Int64[];
  metadataProps: StringStringEntryProto[];
}
export interface AttributeProto extends Unknowns {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: Uint8Array; // subgraphs are carried through untouched
  sparseTensor?: Uint8Array;
  tp?: Uint8Array;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: Uint8Array[];
  sparseTensors: Uint8Array[];
  typeProtos: Uint8Array[];
}
export interface NodeProto extends Unknowns {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
  deviceConfigurations: Uint8Array[];
}
export interface GraphProto extends Unknowns {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: Uint8Array[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: Uint8Array[];
  metadataProps: StringStringEntryProto[];
}
export interface ModelProto extends Unknowns {
  irVersion?: Int64;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: Uint8Array[];
  functions: Uint8Array[];
  configuration: Uint8Array[];
}

const f = (no: number, name: string, kind: FieldKind, extra: Partial<FieldSpec> = {}): FieldSpec => ({ no, name, kind, ...extra });
const rep = (no: number, name: string, kind: FieldKind, extra: Partial<FieldSpec> = {}): FieldSpec => ({ no, name, kind, repeated: true, ...extra });

export const StringStringEntrySpec: MessageSpec = {
  name: 'StringStringEntryProto',
  fields: [f(1, 'key', 'string'), f(2, 'value', 'string')],
};
export const OperatorSetIdSpec: MessageSpec = {
  name: 'OperatorSetIdProto',
  fields: [f(1, 'domain', 'string'), f(2, 'version', 'int64')],
};
export const DimensionSpec: MessageSpec = {
  name: 'TensorShapeProto.Dimension',
  fields: [f(1, 'dimValue', 'int64'), f(2, 'dimParam', 'string'), f(3, 'denotation', 'string')],
};
export const TensorShapeSpec: MessageSpec = {
  name: 'TensorShapeProto',
  fields: [rep(1, 'dim', 'message', { message: () => DimensionSpec })],
};
export const TypeTensorSpec: MessageSpec = {
  name: 'TypeProto.Tensor',
  fields: [f(1, 'elemType', 'int32'), f(2, 'shape', 'message', { message: () => TensorShapeSpec })],
};
export const TypeSpec: MessageSpec = {
  name: 'TypeProto',
  fields: [
    f(1, 'tensorType', 'message', { message: () => TypeTensorSpec }),
    f(4, 'sequenceType', 'raw'),
    f(5, 'mapType', 'raw'),
    f(6, 'denotation', 'string'),
    f(8, 'sparseTensorType', 'raw'),
    f(9, 'optionalType', 'raw'),
  ],
};
export const ValueInfoSpec: MessageSpec = {
  name: 'ValueInfoProto',
  fields: [
    f(1, 'name', 'string'),
    f(2, 'type', 'message', { message: () => TypeSpec }),
    f(3, 'docString', 'string'),
    rep(4, 'metadataProps', 'message', { message: () => StringStringEntrySpec }),
  ],
};
export const TensorSpec: MessageSpec = {
  name: 'TensorProto',
  fields: [
    rep(1, 'dims', 'int64'),
    f(2, 'dataType', 'int32'),
    f(3, 'segment', 'raw'),
    rep(4, 'floatData', 'float', { packed: true }),
    rep(5, 'int32Data', 'int32', { packed: true }),
    rep(6, 'stringData', 'bytes'),
    rep(7, 'int64Data', 'int64', { packed: true }),
    f(8, 'name', 'string'),
    f(9, 'rawData', 'bytes'),
    rep(10, 'doubleData', 'double', { packed: true }),
    rep(11, 'uint64Data', 'uint64', { packed: true }),
    f(12, 'docString', 'string'),
    rep(13, 'externalData', 'message', { message: () => StringStringEntrySpec }),
    f(14, 'dataLocation', 'enum'),
    rep(16, 'metadataProps', 'message', { message: () => StringStringEntrySpec }),
  ],
};
export const AttributeSpec: MessageSpec = {
  name: 'AttributeProto',
  fields: [
    f(1, 'name', 'string'),
    f(2, 'f', 'float'),
    f(3, 'i', 'int64'),
    f(4, 's', 'bytes'),
    f(5, 't', 'message', { message: () => TensorSpec }),
    f(6, 'g', 'raw'),
    rep(7, 'floats', 'float'),
    rep(8, 'ints', 'int64'),
    rep(9, 'strings', 'bytes'),
    rep(10, 'tensors', 'message', { message: () => TensorSpec }),
    rep(11, 'graphs', 'raw'),
    f(13, 'docString', 'string'),
    f(14, 'tp', 'raw'),
    rep(15, 'typeProtos', 'raw'),
    f(20, 'type', 'enum'),
    f(21, 'refAttrName', 'string'),
    f(22, 'sparseTensor', 'raw'),
    rep(23, 'sparseTensors', 'raw'),
  ],
};
export const NodeSpec: MessageSpec = {
  name: 'NodeProto',
  fields: [
    rep(1, 'input', 'string'),
    rep(2, 'output', 'string'),
    f(3, 'name', 'string'),
    f(4, 'opType', 'string'),
    rep(5, 'attribute', 'message', { message: () => AttributeSpec }),
    f(6, 'docString', 'string'),
    f(7, 'domain', 'string'),
    f(8, 'overload', 'string'),
    rep(9, 'metadataProps', 'message', { message: () => StringStringEntrySpec }),
    rep(10, 'deviceConfigurations', 'raw'),
  ],
};
export const GraphSpec: MessageSpec = {
  name: 'GraphProto',
  fields: [
    rep(1, 'node', 'message', { message: () => NodeSpec }),
    f(2, 'name', 'string'),
    rep(5, 'initializer', 'message', { message: () => TensorSpec }),
    f(10, 'docString', 'string'),
    rep(11, 'input', 'message', { message: () => ValueInfoSpec }),
    rep(12, 'output', 'message', { message: () => ValueInfoSpec }),
    rep(13, 'valueInfo', 'message', { message: () => ValueInfoSpec }),
    rep(14, 'quantizationAnnotation', 'raw'),
    rep(15, 'sparseInitializer', 'raw'),
    rep(16, 'metadataProps', 'message', { message: () => StringStringEntrySpec }),
  ],
};
export const ModelSpec: MessageSpec = {
  name: 'ModelProto',
  fields: [
    f(1, 'irVersion', 'int64'),
    f(2, 'producerName', 'string'),
    f(3, 'producerVersion', 'string'),
    f(4, 'domain', 'string'),
    f(5, 'modelVersion', 'int64'),
    f(6, 'docString', 'string'),
    f(7, 'graph', 'message', { message: () => GraphSpec }),
    rep(8, 'opsetImport', 'message', { message: () => OperatorSetIdSpec }),
    rep(14, 'metadataProps', 'message', { message: () => StringStringEntrySpec }),
    rep(20, 'trainingInfo', 'raw'),
    rep(25, 'functions', 'raw'),
    rep(26, 'configuration', 'raw'),
  ],
};

/** TensorProto.DataType */
export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22, FLOAT4E2M1: 23,
} as const;

export const DataTypeName: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** An element type's name for messages ('FLOAT16', not 10); an unknown number says so. */
export function dataTypeName(t: number | undefined): string {
  if (t === undefined) return 'no element type';
  return Object.hasOwn(DataTypeName, t) ? DataTypeName[t] : `unknown element type ${t}`;
}

/** Bits per element; strings have no fixed size. */
export function dataTypeBits(t: number): number {
  switch (t) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 32;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL: return 8;
    case DataType.FLOAT8E4M3FN: case DataType.FLOAT8E4M3FNUZ: case DataType.FLOAT8E5M2: case DataType.FLOAT8E5M2FNUZ: return 8;
    case DataType.UINT16: case DataType.INT16: case DataType.FLOAT16: case DataType.BFLOAT16: return 16;
    case DataType.INT64: case DataType.UINT64: case DataType.DOUBLE: case DataType.COMPLEX64: return 64;
    case DataType.COMPLEX128: return 128;
    case DataType.UINT4: case DataType.INT4: case DataType.FLOAT4E2M1: return 4;
    default: return 0;
  }
}

/** AttributeProto.AttributeType */
export const AttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9,
  GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;

export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;
