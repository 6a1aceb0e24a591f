// Run a wasm32-wasip1 program (here: a Rust test binary) in Node's V8, the engine Envoy runs
// the module in, through node:wasi. Arguments after the file go to the program; the exit code
// is the program's, or 101 when it traps (a Rust panic aborts: the test failed).
//   node tests/tools/wasi-run.mjs FILE.wasm [ARGS...]
import { readFile } from "node:fs/promises";
import { argv, exit } from "node:process";
import { WASI } from "node:wasi";

const [file, ...args] = argv.slice(2);
if (!file) {
  console.error("usage: node wasi-run.mjs FILE.wasm [ARGS...]");
  exit(2);
}
const wasi = new WASI({ version: "preview1", args: [file, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
// What else the binary imports from "env": the proxy-wasm ABI (the library's wasm glue is linked
// in; tests never call it) and, on the Debian route, std's thread joins (tests/tools/wasi-ld.sh;
// never reached: the test harness runs tests on the main thread on wasm). The joins fail with
// ENOSYS; anything else throws if called, which fails the run.
const ENOSYS = 52;
const known = { pthread_join: () => ENOSYS, pthread_detach: () => ENOSYS };
const env = {};
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from === "env" && kind === "function") {
    env[name] = known[name] ?? (() => { throw new Error(`wasi-run: env.${name} called`); });
  }
}
const imports = { ...wasi.getImportObject(), env };
const instance = await WebAssembly.instantiate(module, imports);
// The library's wasm glue also exports `_initialize` (a proxy-wasm module is a reactor), which
// node:wasi refuses next to `_start`: hand it the command's exports only.
const { _start, memory } = instance.exports;
let code;
try {
  code = wasi.start({ exports: { _start, memory } });
} catch (e) {
  console.error(`wasi-run: ${file} trapped: ${e}`);
  exit(101);
}
exit(code);
