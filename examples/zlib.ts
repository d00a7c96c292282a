// zlib allocating from a tsmalloc heap: z_stream.zalloc/zfree point at a cAllocator bridge,
// so the stream's internal state (~270 KiB for deflate at level 6) is counted in the heap
// and gone after deflateEnd/inflateEnd.
//   deno run --allow-ffi --allow-env --allow-read examples/zlib.ts     bun examples/zlib.ts
import process from "node:process";
import { backend, bytes, cAllocator, dataView, free, Heap, malloc } from "../mod.ts";
import { openZlib } from "./_ffi.ts";

const Z_OK = 0, Z_STREAM_END = 1, Z_FINISH = 4;
// struct z_stream on LP64: next_in 0, avail_in 8, total_in 16, next_out 24, avail_out 32,
// total_out 40, msg 48, state 56, zalloc 64, zfree 72, opaque 80, ... sizeof 112
const Z_STREAM_SIZE = 112;

/** What the example saw; every number is in bytes. */
export interface ZlibResult {
  input: number;
  compressed: number;
  /** Live bytes the bridge held while the deflate stream was open / after deflateEnd. */
  deflateLive: number;
  /** The heap's live bytes (heap.visit) while the deflate stream was open: the same blocks. */
  deflateHeapBytes: number;
  afterDeflateEnd: number;
  inflateLive: number;
  afterInflateEnd: number;
  roundTrip: boolean;
}

/** Deflates and inflates `size` bytes with zlib's memory in a heap of its own (`checkThread`: see cAllocator). */
export function zlibExample(size = 4 * 1024 * 1024, checkThread = false): ZlibResult {
  const z = openZlib(backend().ffi ?? "none");
  using heap = Heap.create();
  using c = cAllocator({ heap, tag: "zlib", checkThread });
  const input = malloc(size), output = malloc(size + (size >> 8) + 1024), back = malloc(size), strm = malloc(Z_STREAM_SIZE);
  try {
    const src = bytes(input, size);
    for (let i = 0; i < size; i++) src[i] = (i * 7 + (i >> 10)) & 0x3f; // compressible, not trivial
    const s = dataView(strm, Z_STREAM_SIZE);
    const stream = (inAddr: number, inLen: number, outAddr: number, outLen: number) => {
      bytes(strm, Z_STREAM_SIZE).fill(0);
      s.setBigUint64(0, BigInt(inAddr), true);
      s.setUint32(8, inLen, true);
      s.setBigUint64(24, BigInt(outAddr), true);
      s.setUint32(32, outLen, true);
      s.setBigUint64(64, BigInt(c.address.zalloc), true);
      s.setBigUint64(72, BigInt(c.address.zfree), true);
    };
    const total = () => Number(s.getBigUint64(40, true));

    stream(input, size, output, size + (size >> 8) + 1024);
    if (z.deflateInit_(strm, 6, z.zlibVersion(), Z_STREAM_SIZE) !== Z_OK) throw new Error("deflateInit failed");
    if (z.deflate(strm, Z_FINISH) !== Z_STREAM_END) throw new Error("deflate did not finish");
    const deflateLive = c.stats().liveBytes;
    let deflateHeapBytes = 0;
    heap.visit((_p, usable) => void (deflateHeapBytes += usable));
    const compressed = total();
    z.deflateEnd(strm);
    const afterDeflateEnd = c.stats().liveBytes;

    stream(output, compressed, back, size);
    if (z.inflateInit_(strm, z.zlibVersion(), Z_STREAM_SIZE) !== Z_OK) throw new Error("inflateInit failed");
    if (z.inflate(strm, Z_FINISH) !== Z_STREAM_END) throw new Error("inflate did not finish");
    const inflateLive = c.stats().liveBytes;
    const inflated = total();
    z.inflateEnd(strm);
    const afterInflateEnd = c.stats().liveBytes;

    const a = bytes(input, size), b = bytes(back, size);
    let same = inflated === size;
    for (let i = 0; same && i < size; i++) same = a[i] === b[i];
    return { input: size, compressed, deflateLive, deflateHeapBytes, afterDeflateEnd, inflateLive, afterInflateEnd, roundTrip: same };
  } finally {
    for (const p of [input, output, back, strm]) free(p);
  }
}

// run as a script (not when imported, bundled or not)
if (process.argv[1]?.replace(/\\/g, "/").endsWith("examples/zlib.ts")) console.log(zlibExample());
