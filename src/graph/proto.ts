// A small graph builder over onnx-proto: values are plain string names, every op returns its output
// name(s). Initializers are views over Float32Arrays (no copy until ORT parses the bytes).
import pkg from 'onnx-proto';
import type { LinearQuantizer } from './quant.js';

const { onnx } = pkg;
const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

/** Marks a float attribute (ONNX needs FLOAT typed explicitly, a bare number is read as INT). */
export const F = (f: number): { f: number } => ({ f });
export type Attr = number | number[] | string | { f: number };

export type Dim = number | string; // string = symbolic (dynamic) dimension
export type ElemType = 'float32' | 'int64';

const elem = (t: ElemType): number => (t === 'float32' ? DT.FLOAT : DT.INT64);

function valueInfo(name: string, t: ElemType, dims?: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: elem(t),
        ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
      },
    },
  });
}

function attribute(name: string, a: Attr) {
  if (typeof a === 'number') return { name, type: AT.INT, i: a };
  if (typeof a === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(a) };
  if (Array.isArray(a)) return { name, type: AT.INTS, ints: a };
  return { name, type: AT.FLOAT, f: a.f };
}

/** How a graph is built: fp32 Gemm (default) or quantized Linear layers. */
export interface GraphOptions {
  quant?: LinearQuantizer;
  /** LM stages: prefill attention through com.microsoft GroupQueryAttention (default); false = standard ops everywhere. */
  fusedAttention?: boolean;
}

export class GraphBuilder {
  private nodes: unknown[] = [];
  private inits: unknown[] = [];
  private inputs: unknown[] = [];
  private outputs: unknown[] = [];
  private counter = 0;
  private consts = new Map<string, string>();

  /** With `quant`, linear() emits MatMulNBits over block-quantized weights instead of Gemm. */
  readonly quant: LinearQuantizer | undefined;

  /** Set on If-branch builders: value names come from the root so they never clash. */
  private parent: GraphBuilder | undefined;

  constructor(readonly name: string, opts: GraphOptions = {}) {
    this.quant = opts.quant;
  }

  private fresh(hint: string): string {
    return this.parent ? this.parent.fresh(hint) : `${hint}_${this.counter++}`;
  }

  /**
   * An If node. Each branch is built on a child builder (values of this graph are visible in it by
   * name) and returns `types.length` values; the node returns the taken branch's values. Only the
   * taken branch runs, so e.g. prefill and decode can use different attention kernels in one session.
   */
  ifElse(cond: string, types: ElemType[], then: (b: GraphBuilder) => string[], otherwise: (b: GraphBuilder) => string[]): string[] {
    const branch = (name: string, build: (b: GraphBuilder) => string[]) => {
      const b = new GraphBuilder(name, { ...(this.quant ? { quant: this.quant } : {}) });
      b.parent = this;
      const outs = build(b);
      const names = outs.map((o, i) => {
        const n = this.fresh(`${name}_out`);
        b.nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [o], output: [n] }));
        b.outputs.push(valueInfo(n, types[i]!));
        return n;
      });
      void names;
      return onnx.GraphProto.create({ name, node: b.nodes as never, initializer: b.inits as never, output: b.outputs as never });
    };
    const out = types.map(() => this.fresh('if'));
    this.nodes.push(
      onnx.NodeProto.create({
        opType: 'If',
        input: [cond],
        output: out,
        attribute: [
          { name: 'then_branch', type: AT.GRAPH, g: branch(this.fresh('then'), then) },
          { name: 'else_branch', type: AT.GRAPH, g: branch(this.fresh('else'), otherwise) },
        ],
      }),
    );
    return out;
  }

  input(name: string, t: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, t, dims));
    return name;
  }

  /** Declares `value` as graph output `name` (through an Identity when the names differ). */
  output(value: string, name: string, t: ElemType, dims: Dim[]): void {
    if (value !== name) this.nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [value], output: [name] }));
    this.outputs.push(valueInfo(name, t, dims));
  }

  /** A weight initializer; `data` is referenced, not copied. */
  weight(hint: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.inits.push(
      onnx.TensorProto.create({ name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }),
    );
    return name;
  }

  /** A uint8 initializer (quantized weights); `data` is referenced, not copied. */
  weightU8(hint: string, dims: number[], data: Uint8Array): string {
    const name = this.fresh(hint);
    this.inits.push(onnx.TensorProto.create({ name, dims, dataType: DT.UINT8, rawData: data }));
    return name;
  }

  /** Small constants, deduplicated by value. */
  constI64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(DT.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))), `i${dims.join('x')}:${values.join(',')}`);
  }

  constF32(values: number[], dims: number[] = [values.length]): string {
    return this.constant(DT.FLOAT, dims, Float32Array.from(values), `f${dims.join('x')}:${values.join(',')}`);
  }

  private constant(dataType: number, dims: number[], data: BigInt64Array | Float32Array, key: string): string {
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh('c');
      this.inits.push(onnx.TensorProto.create({ name, dims, dataType, rawData: new Uint8Array(data.buffer) }));
      this.consts.set(key, name);
    }
    return name;
  }

  /** Adds a node with `nOut` outputs; returns the single output name. Use `opN` for several. */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.opN(type, inputs, 1, attrs, domain)[0]!;
  }

  opN(type: string, inputs: string[], nOut: number, attrs: Record<string, Attr> = {}, domain = ''): string[] {
    const out = Array.from({ length: nOut }, () => this.fresh(type.toLowerCase()));
    this.nodes.push(
      onnx.NodeProto.create({
        opType: type,
        domain,
        input: inputs,
        output: out,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return out;
  }

  /** Serialises to ONNX bytes (opset 17 + com.microsoft 1). */
  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'lightvlm',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: onnx.GraphProto.create({
        name: this.name,
        node: this.nodes as never,
        initializer: this.inits as never,
        input: this.inputs as never,
        output: this.outputs as never,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
