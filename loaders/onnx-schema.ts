// Lastmile's own description of the ONNX wire format: only the messages and fields the engine reads
// or writes. Field numbers follow onnx.proto / onnx-data.proto (IR versions 3 to 13).
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package lm;
message Model {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional Graph graph = 7;
  repeated OpsetId opset_import = 8;
  repeated KeyValue metadata_props = 14;
  repeated Function functions = 25;
}
message OpsetId { optional string domain = 1; optional int64 version = 2; }
message KeyValue { optional string key = 1; optional string value = 2; }
message Graph {
  repeated Node node = 1;
  optional string name = 2;
  repeated Tensor initializer = 5;
  repeated ValueInfo input = 11;
  repeated ValueInfo output = 12;
  repeated ValueInfo value_info = 13;
  repeated SparseTensor sparse_initializer = 15;
}
message Node {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated Attribute attribute = 5;
  optional string domain = 7;
  optional string overload = 8;
}
message Attribute {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional Tensor t = 5;
  optional Graph g = 6;
  repeated float floats = 7 [packed = true];
  repeated int64 ints = 8 [packed = true];
  repeated bytes strings = 9;
  repeated Tensor tensors = 10;
  repeated Graph graphs = 11;
  optional TypeProto tp = 14;
  repeated TypeProto type_protos = 15;
  optional int32 type = 20;
  optional string ref_attr_name = 21;
  optional SparseTensor sparse_tensor = 22;
  repeated SparseTensor sparse_tensors = 23;
}
message ValueInfo { optional string name = 1; optional TypeProto type = 2; }
message Tensor {
  repeated int64 dims = 1 [packed = true];
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated KeyValue external_data = 13;
  optional int32 data_location = 14;
}
message SparseTensor { optional Tensor values = 1; optional Tensor indices = 2; repeated int64 dims = 3 [packed = true]; }
message Dim { optional int64 dim_value = 1; optional string dim_param = 2; }
message Shape { repeated Dim dim = 1; }
message TypeProto {
  message TensorT { optional int32 elem_type = 1; optional Shape shape = 2; }
  message SeqT { optional TypeProto elem_type = 1; }
  message MapT { optional int32 key_type = 1; optional TypeProto value_type = 2; }
  message OptT { optional TypeProto elem_type = 1; }
  optional TensorT tensor_type = 1;
  optional SeqT sequence_type = 4;
  optional MapT map_type = 5;
  optional TensorT sparse_tensor_type = 8;
  optional OptT optional_type = 9;
}
message Function {
  optional string name = 1;
  repeated string input = 4;
  repeated string output = 5;
  repeated string attribute = 6;
  repeated Node node = 7;
  repeated OpsetId opset_import = 9;
  optional string domain = 10;
  repeated Attribute attribute_proto = 11;
  optional string overload = 13;
}
message Sequence {
  optional string name = 1;
  optional int32 elem_type = 2;
  repeated Tensor tensor_values = 3;
  repeated Sequence sequence_values = 5;
  repeated MapValue map_values = 6;
  repeated Optional optional_values = 7;
}
message MapValue {
  optional string name = 1;
  optional int32 key_type = 2;
  repeated int64 keys = 3;
  repeated bytes string_keys = 4;
  optional Sequence values = 5;
}
message Optional {
  optional string name = 1;
  optional int32 elem_type = 2;
  optional Tensor tensor_value = 3;
  optional Sequence sequence_value = 5;
  optional MapValue map_value = 6;
  optional Optional optional_value = 7;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
/** Decoding refuses messages nested deeper than this (protobufjs's limit, as protoc's). */
export const MAX_NESTING: number = protobuf.util.recursionLimit;
export const Msg = {
  Model: root.lookupType('lm.Model'),
  Tensor: root.lookupType('lm.Tensor'),
  Sequence: root.lookupType('lm.Sequence'),
  Optional: root.lookupType('lm.Optional'),
};
