// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints its
// diagnostics as JSON lines: {"severity": 0..3, "code", "message", "path"}. Exit 0 when the
// parser returned a document, 1 when it could not. Run by tests/sync/test_asyncapi.py.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Parser, fromFile } from '@asyncapi/parser';

const file = resolve(process.argv[2]);
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse({
  source: file,
  validateOptions: { allowedSeverity: { error: false, warning: true, info: true, hint: true } },
});
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: String(d.code), message: d.message,
                               path: d.path.join('/') }));
}
if (document) {
  const summary = {
    document: true,
    version: document.version(),
    channels: document.channels().all().map((c) => c.id()).sort(),
    operations: document.operations().all().map((o) => o.id()).sort(),
    securitySchemes: document.components().securitySchemes().all().map((s) => [s.id(), s.type()]),
  };
  console.log(JSON.stringify(summary));
}
process.exit(document ? 0 : 1);
