// Checks UCUM unit codes with NLM's reference library (@lhncbc/ucum-lhc): reads a JSON array
// of codes on stdin, prints one JSON line per code {"code", "status", "msg"}; status "valid"
// means a valid UCUM expression. Run by tests/sync/test_us_core_conformance.py.
import ucum from '@lhncbc/ucum-lhc';

const utils = ucum.UcumLhcUtils.getInstance();
let input = '';
for await (const chunk of process.stdin) input += chunk;
for (const code of JSON.parse(input)) {
  const result = utils.validateUnitString(code, false);
  console.log(JSON.stringify({ code, status: result.status, msg: result.msg }));
}
