import {closeSync, openSync, readSync, writeSync} from "node:fs";

/**
 * A small GGUF (v3) reader and streaming writer: enough to copy a model's metadata and
 * tokenizer and write tensors of our own. Format: PyPI `gguf` (gguf/constants.py,
 * gguf_writer.py) and llama.cpp's ggml/include/gguf.h. Little-endian throughout.
 */

export const VALUE = {u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12} as const;
export type ValueType = (typeof VALUE)[keyof typeof VALUE];

/** ggml tensor types this module writes. */
export const GGML = {f32: 0, f16: 1, q8_0: 8} as const;
export type GgmlType = (typeof GGML)[keyof typeof GGML];

export type Scalar = number | bigint | boolean | string;
export interface MetadataValue {
  readonly type: ValueType;
  /** For arrays: the element type. */
  readonly itemType?: ValueType;
  readonly value: Scalar | readonly Scalar[];
}
export type Metadata = Map<string, MetadataValue>;

export interface TensorInfo {
  readonly name: string;
  /** ne0 first (the fastest-varying dimension), as GGUF stores them. */
  readonly dims: readonly number[];
  readonly type: GgmlType | number;
}

export interface GgufFile {
  readonly metadata: Metadata;
  readonly tensors: readonly TensorInfo[];
}

const MAGIC = 0x46554747; // "GGUF"
const DEFAULT_ALIGNMENT = 32;

/** Bytes of one tensor's data. */
export function tensorBytes(t: TensorInfo): number {
  const n = t.dims.reduce((a, b) => a * b, 1);
  switch (t.type) {
    case GGML.f32:
      return n * 4;
    case GGML.f16:
      return n * 2;
    case GGML.q8_0:
      if (n % 32 !== 0) throw new Error(`${t.name}: q8_0 needs a multiple of 32 elements`);
      return (n / 32) * 34;
    default:
      throw new Error(`${t.name}: ggml type ${t.type} is not supported here`);
  }
}

/** Reads a GGUF file's metadata and tensor list (not the tensor data). */
export function readGguf(path: string): GgufFile {
  const fd = openSync(path, "r");
  try {
    const r = new Reader(fd);
    if (r.u32() !== MAGIC) throw new Error(`${path} is not a GGUF file`);
    const version = r.u32();
    if (version !== 3) throw new Error(`${path}: GGUF version ${version}, only 3 is supported`);
    const tensorCount = Number(r.u64());
    const kvCount = Number(r.u64());
    const metadata: Metadata = new Map();
    for (let i = 0; i < kvCount; i++) {
      const key = r.string();
      const type = r.u32() as ValueType;
      if (type === VALUE.array) {
        const itemType = r.u32() as ValueType;
        const n = Number(r.u64());
        const items: Scalar[] = new Array<Scalar>(n);
        for (let j = 0; j < n; j++) items[j] = r.scalar(itemType);
        metadata.set(key, {type, itemType, value: items});
      } else {
        metadata.set(key, {type, value: r.scalar(type)});
      }
    }
    const tensors: TensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = r.string();
      const nDims = r.u32();
      const dims = Array.from({length: nDims}, () => Number(r.u64()));
      const type = r.u32();
      r.u64(); // offset: recomputed on write
      tensors.push({name, dims, type});
    }
    return {metadata, tensors};
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a GGUF file: header, metadata, tensor infos, then each tensor's bytes as `fill`
 * produces them (called once per tensor, in order, with a buffer to fill completely),
 * streamed so multi-gigabyte files never sit in memory.
 */
export function writeGguf(path: string, file: GgufFile, fill: (tensor: TensorInfo, write: (chunk: Uint8Array) => void) => void): void {
  const alignment = Number(file.metadata.get("general.alignment")?.value ?? DEFAULT_ALIGNMENT);
  const w = new Writer();
  w.u32(MAGIC);
  w.u32(3);
  w.u64(BigInt(file.tensors.length));
  w.u64(BigInt(file.metadata.size));
  for (const [key, v] of file.metadata) {
    w.string(key);
    w.u32(v.type);
    if (v.type === VALUE.array) {
      const items = v.value as readonly Scalar[];
      w.u32(v.itemType!);
      w.u64(BigInt(items.length));
      for (const item of items) w.scalar(v.itemType!, item);
    } else {
      w.scalar(v.type, v.value as Scalar);
    }
  }
  let offset = 0;
  for (const t of file.tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(offset));
    offset = align(offset + tensorBytes(t), alignment);
  }
  const fd = openSync(path, "w");
  try {
    const header = w.bytes();
    writeSync(fd, header);
    let position = header.length;
    const pad = (to: number) => {
      if (to > position) writeSync(fd, new Uint8Array(to - position));
      position = to;
    };
    pad(align(position, alignment));
    const dataStart = position;
    let expected = 0;
    for (const t of file.tensors) {
      pad(dataStart + expected);
      let written = 0;
      fill(t, (chunk) => {
        writeSync(fd, chunk);
        written += chunk.length;
      });
      if (written !== tensorBytes(t)) throw new Error(`${t.name}: wrote ${written} bytes, expected ${tensorBytes(t)}`);
      position += written;
      expected = align(expected + written, alignment);
    }
    pad(dataStart + expected);
  } finally {
    closeSync(fd);
  }
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;

class Reader {
  #buf = Buffer.alloc(1 << 16);
  #start = 0; // file position of #buf[0]
  #pos = 0; // position in #buf
  #len = 0;

  constructor(private readonly fd: number) {}

  #need(n: number): void {
    if (this.#pos + n <= this.#len) return;
    const rest = this.#buf.subarray(this.#pos, this.#len);
    const size = Math.max(this.#buf.length, n * 2);
    const next = Buffer.alloc(size);
    rest.copy(next);
    this.#start += this.#pos;
    const got = readSync(this.fd, next, rest.length, size - rest.length, this.#start + rest.length);
    this.#buf = next;
    this.#pos = 0;
    this.#len = rest.length + got;
    if (this.#len < n) throw new Error("unexpected end of GGUF file");
  }

  u32(): number {
    this.#need(4);
    const v = this.#buf.readUInt32LE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(): bigint {
    this.#need(8);
    const v = this.#buf.readBigUInt64LE(this.#pos);
    this.#pos += 8;
    return v;
  }

  string(): string {
    const n = Number(this.u64());
    this.#need(n);
    const s = this.#buf.toString("utf8", this.#pos, this.#pos + n);
    this.#pos += n;
    return s;
  }

  scalar(type: ValueType): Scalar {
    const b = () => this.#buf;
    const take = <T>(n: number, read: (at: number) => T): T => {
      this.#need(n);
      const v = read(this.#pos);
      this.#pos += n;
      return v;
    };
    switch (type) {
      case VALUE.u8:
        return take(1, (at) => b().readUInt8(at));
      case VALUE.i8:
        return take(1, (at) => b().readInt8(at));
      case VALUE.u16:
        return take(2, (at) => b().readUInt16LE(at));
      case VALUE.i16:
        return take(2, (at) => b().readInt16LE(at));
      case VALUE.u32:
        return take(4, (at) => b().readUInt32LE(at));
      case VALUE.i32:
        return take(4, (at) => b().readInt32LE(at));
      case VALUE.f32:
        return take(4, (at) => b().readFloatLE(at));
      case VALUE.bool:
        return take(1, (at) => b().readUInt8(at) !== 0);
      case VALUE.string:
        return this.string();
      case VALUE.u64:
        return take(8, (at) => b().readBigUInt64LE(at));
      case VALUE.i64:
        return take(8, (at) => b().readBigInt64LE(at));
      case VALUE.f64:
        return take(8, (at) => b().readDoubleLE(at));
      default:
        throw new Error(`GGUF value type ${type} is not supported`);
    }
  }
}

class Writer {
  readonly #chunks: Buffer[] = [];

  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.#chunks.push(b);
  }

  u64(v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.#chunks.push(b);
  }

  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(BigInt(bytes.length));
    this.#chunks.push(bytes);
  }

  scalar(type: ValueType, v: Scalar): void {
    const put = (n: number, write: (b: Buffer) => void) => {
      const b = Buffer.alloc(n);
      write(b);
      this.#chunks.push(b);
    };
    switch (type) {
      case VALUE.u8:
        return put(1, (b) => b.writeUInt8(Number(v)));
      case VALUE.i8:
        return put(1, (b) => b.writeInt8(Number(v)));
      case VALUE.u16:
        return put(2, (b) => b.writeUInt16LE(Number(v)));
      case VALUE.i16:
        return put(2, (b) => b.writeInt16LE(Number(v)));
      case VALUE.u32:
        return put(4, (b) => b.writeUInt32LE(Number(v)));
      case VALUE.i32:
        return put(4, (b) => b.writeInt32LE(Number(v)));
      case VALUE.f32:
        return put(4, (b) => b.writeFloatLE(Number(v)));
      case VALUE.bool:
        return put(1, (b) => b.writeUInt8(v ? 1 : 0));
      case VALUE.string:
        return this.string(String(v));
      case VALUE.u64:
        return put(8, (b) => b.writeBigUInt64LE(BigInt(v)));
      case VALUE.i64:
        return put(8, (b) => b.writeBigInt64LE(BigInt(v)));
      case VALUE.f64:
        return put(8, (b) => b.writeDoubleLE(Number(v)));
      default:
        throw new Error(`GGUF value type ${type} is not supported`);
    }
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}
