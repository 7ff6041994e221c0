/**
 * One profile's size and network from `minikube profile list -o json --light` (on
 * stdin), for `npm run up`: minikube keeps the CPUs, memory and CNI a profile
 * was created with and ignores new --cpus/--memory/--cni on a later start.
 * --light: only the profiles' configs, no status check (which inspects every profile's machine, and
 * where one profile is broken aborts the whole listing); this reads no status.
 * Text before the JSON is skipped: an amd64 minikube on an arm64 Mac prints a notice first.
 *
 *   minikube profile list -o json --light | node scripts/lib/minikube-profile.js <profile>
 *   → "<CPUs> <memory MB> <CNI or -> <runtime or -> <driver or ->" on one line; exit 1 if there is no such profile
 *
 * Plain CommonJS, run by node directly.
 */
'use strict';
const profile = process.argv[2];
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  let list;
  try {
    list = JSON.parse(input.slice(input.indexOf('{')));
  } catch {
    process.exit(1);
  }
  const found = (list.valid ?? []).find((entry) => entry.Name === profile);
  if (!found?.Config) process.exit(1);
  const config = found.Config;
  const k8s = config.KubernetesConfig ?? {};
  const field = (value) => (value === undefined || value === null || value === '' ? '-' : String(value));
  process.stdout.write(`${field(config.CPUs)} ${field(config.Memory)} ${field(k8s.CNI)} ${field(k8s.ContainerRuntime)} ${field(config.Driver)}\n`);
});
