// Public API: onnxruntime-web compatible names first, then Lastmile's own extras.
export { InferenceSession, type SessionOptions, type RunOptions, type ValueMetadata, type OutputValue } from './engine/session.js';
export { Tensor } from './engine/tensor.js';
export type { DType } from './engine/dtype.js';
export { LastmileError, ModelLoadError, UnsupportedOpError, InputError, OpError } from './engine/errors.js';
export { loadModel } from './loaders/onnx.js';
