/**
 * The `minikube` command of the STAND-IN (devkit/minikube-standin): it forwards its arguments to the
 * stand-in's server in the test process (a unix socket) and plays back what the server answers:
 * stdout, stderr and the exit code. Plain CommonJS, started by node directly, so that every call is
 * as quick as the real CLI's and needs nothing but node.
 *
 *   node client.js <socket> <minikube arguments…>
 */
'use strict';
const net = require('node:net');

const [socketPath, ...args] = process.argv.slice(2);
const socket = net.connect(socketPath);
let buffered = '';
let exitCode;
socket.on('connect', () => socket.write(`${JSON.stringify({ args, cwd: process.cwd() })}\n`));
socket.on('data', (chunk) => {
  buffered += chunk.toString('utf8');
  let newline;
  while ((newline = buffered.indexOf('\n')) >= 0) {
    const message = JSON.parse(buffered.slice(0, newline));
    buffered = buffered.slice(newline + 1);
    if (message.stdout !== undefined) process.stdout.write(message.stdout);
    if (message.stderr !== undefined) process.stderr.write(message.stderr);
    if (message.exit !== undefined) exitCode = message.exit;
  }
});
socket.on('error', (error) => {
  process.stderr.write(`minikube (stand-in): its server at ${socketPath} does not answer: ${error.message}\n`);
  process.exit(1);
});
socket.on('close', () => {
  if (exitCode === undefined) process.stderr.write('minikube (stand-in): the server hung up before answering\n');
  // Exit once stdout and stderr are flushed (a pipe may still hold output).
  process.stdout.write('', () => process.stderr.write('', () => process.exit(exitCode ?? 1)));
});
