// Typed errors. Each names where the problem is (node, op, input) and what was expected.

export class LastmileError extends Error {
  constructor(message: string) { super(message); this.name = new.target.name; }
}
/** The bytes are not a model we can read: corrupt, truncated, hostile or unsupported format. */
export class ModelLoadError extends LastmileError {}
/** The model uses an op (or op version) no backend implements; raised at session creation. */
export class UnsupportedOpError extends LastmileError {
  constructor(readonly op: string, readonly domain: string, readonly opset: number, readonly node: string, detail = '') {
    super(`unsupported op ${domain ? domain + '.' : ''}${op} (opset ${opset}) at node '${node}'${detail ? ': ' + detail : ''}`);
  }
}
/** A feed does not match the model's inputs (name, dtype, rank, dims). */
export class InputError extends LastmileError {}
/** A node received values its op cannot accept, or failed while running. */
export class OpError extends LastmileError {}

/** Location prefix used in OpError messages. */
export function where(node: { name: string; opType: string }): string {
  return `node '${node.name}' (${node.opType})`;
}
