/**
 * Asks for a secret on the terminal (/dev/tty, so it works with stdin or stdout redirected) with
 * echo off, as minikube-up.sh's `ask` does with `stty -echo`. No terminal: an error saying how to
 * give it instead.
 */
import { openSync, writeSync } from 'node:fs';
import tty from 'node:tty';

export async function askHidden(question: string): Promise<string> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new Error('the stack keeps its secrets under a passphrase, and there is no terminal to ask for it: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE');
  }
  const input = new tty.ReadStream(fd);
  input.setRawMode(true);
  writeSync(fd, `dev: ${question}: `);
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      input.on('data', (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n') return resolve(typed);
          if (char === '\u0003') return reject(new Error('interrupted')); // Ctrl-C: raw mode delivers it as a byte
          if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
          else typed += char;
        }
      });
    });
  } finally {
    input.setRawMode(false);
    writeSync(fd, '\n');
    input.destroy(); // closes the fd
  }
}
