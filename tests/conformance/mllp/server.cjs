// The EHR side in the gateway tests: node-hl7-server (npm, another project's MLLP listener
// and HL7 parser) receives each message, parses it with node-hl7-client, records it, and ACKs.
//
//   node server.cjs --port P --log FILE [--reject-mrn MRN --reason TEXT] [--error-mrn MRN]
//                   [--silent-first N] [--reject-type TYPE]
//
// FILE gets one JSON line per message received, written (synchronously) before the ACK:
// {"control_id", "type", "mrn", "ack", "raw"}. --reject-mrn answers AR for that patient with
// TEXT in MSA-3 and ERR-8 (as an EHR that does not know the patient would); --error-mrn answers
// AE; --reject-type answers AR (with TEXT) to every message of that MSH-9 type, e.g. ADT^A60;
// --silent-first leaves the first N messages unanswered (an EHR that hangs). Prints
// "listening <port>" once it listens.
'use strict'
const fs = require('fs')
const { Server } = require('node-hl7-server')

const args = process.argv.slice(2)
function arg (name, fallback) {
  const at = args.indexOf(name)
  return at >= 0 ? args[at + 1] : fallback
}
const port = Number(arg('--port'))
const logFile = arg('--log')
const rejectMrn = arg('--reject-mrn', '')
const errorMrn = arg('--error-mrn', '')
const reason = arg('--reason', 'rejected')
const rejectType = arg('--reject-type', '')
let silent = Number(arg('--silent-first', '0'))

const server = new Server({ bindAddress: '127.0.0.1' })
const inbound = server.createInbound({ port }, async (req, res) => {
  const message = req.getMessage()
  const mrn = message.get('PID.3.1').toString()
  const entry = {
    control_id: message.get('MSH.10').toString(),
    type: message.get('MSH.9.1').toString() + '^' + message.get('MSH.9.2').toString(),
    mrn,
    raw: message.toString()
  }
  if (silent > 0) {
    silent -= 1
    entry.ack = 'none'
    fs.appendFileSync(logFile, JSON.stringify(entry) + '\n')
    return
  }
  // A message without a PID (a help request names no patient) matches no --reject-mrn.
  const code = (rejectMrn && mrn === rejectMrn) || (rejectType && entry.type === rejectType)
    ? 'AR'
    : errorMrn && mrn === errorMrn ? 'AE' : 'AA'
  entry.ack = code
  fs.appendFileSync(logFile, JSON.stringify(entry) + '\n')
  if (code !== 'AA') {
    // node-hl7-server builds MSH + MSA-1/MSA-2; a real EHR also says why (MSA-3, ERR).
    const build = res._createAckMessage.bind(res)
    res._createAckMessage = (type, original) => {
      const ack = build(type, original)
      ack.set('MSA.3', reason)
      const err = ack.addSegment('ERR')
      err.set('3.1', '204')
      err.set('3.2', 'Unknown key identifier')
      err.set('3.3', 'HL70357')
      err.set('4', 'E')
      err.set('8', reason)
      return ack
    }
  }
  await res.sendResponse(code)
})
inbound.on('listen', () => { process.stdout.write(`listening ${port}\n`) })
inbound.on('error', (err) => { process.stderr.write(`error ${err}\n`); process.exit(1) })
process.on('SIGTERM', () => { inbound.close().then(() => process.exit(0)) })
