/**
 * What `npm run up` learns from the stack's settings file, Pulumi.<stack>.yaml,
 * without the Pulumi CLI: the CLI needs the passphrase to open a stack with a
 * passphrase secrets provider even to answer "is this key set?", and a script
 * must never decrypt a password only to learn that it exists.
 *
 *   node scripts/lib/stack-file.js <stack> path              the file's path
 *   node scripts/lib/stack-file.js <stack> secrets-provider  passphrase | <provider URL> | "" (not chosen yet)
 *   node scripts/lib/stack-file.js <stack> is-set <key>      exit 0 when <key> holds a value, secure or plain
 *   node scripts/lib/stack-file.js <stack> value <key>       its plain value, else the project default, else ""
 *
 * Plain CommonJS, run by node directly (no build step, no tsx start-up cost).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parse } = require('yaml');

const readYaml = (file) => (fs.existsSync(file) ? parse(fs.readFileSync(file, 'utf8')) ?? {} : {});

const [stack, command, key] = process.argv.slice(2);
if (!stack || !command) {
  process.stderr.write('usage: stack-file.js <stack> path|secrets-provider|is-set <key>|value <key>\n');
  process.exit(2);
}
const project = readYaml('Pulumi.yaml');
// "org/project/dev" and "org/dev" keep their settings in Pulumi.dev.yaml.
const file = path.join(project.stackConfigDir ?? '.', `Pulumi.${stack.split('/').pop()}.yaml`);
const settings = readYaml(file);
const config = settings.config ?? {};
const entry = key === undefined ? undefined : config[key.includes(':') ? key : `${project.name}:${key}`];

switch (command) {
  case 'path':
    process.stdout.write(`${file}\n`);
    break;
  case 'secrets-provider':
    // A passphrase provider records its salt; a cloud KMS one its URL and key; none yet: the backend's default.
    process.stdout.write(`${settings.encryptionsalt ? 'passphrase' : (settings.secretsprovider ?? '')}\n`);
    break;
  case 'is-set': {
    const set = entry !== undefined && entry !== null && entry !== '' && !(typeof entry === 'object' && !('secure' in entry) && Object.keys(entry).length === 0);
    process.exit(set ? 0 : 1);
    break;
  }
  case 'value': {
    const fallback = project.config?.[key]?.default ?? project.config?.[`${project.name}:${key}`]?.default ?? '';
    const plain = entry === undefined || entry === null || typeof entry === 'object' ? fallback : entry;
    process.stdout.write(`${plain}\n`);
    break;
  }
  default:
    process.stderr.write(`stack-file.js: unknown command ${command}\n`);
    process.exit(2);
}
