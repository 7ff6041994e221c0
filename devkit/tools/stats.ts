/**
 * The benchmark's latency figures and its text table. The user's load tools have their own
 * (scripts/lib/stats.ts): the test wing may not import the user's tools, nor they it (test/infra/layout.test.ts).
 */
export function summarize(values: readonly number[]): { p50: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
  return { p50: at(50), p99: at(99) };
}

/** Left-aligned text table. */
export function table(rows: Array<Array<string | number>>): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => String(row[column]).length)));
  return rows.map((row) => row.map((cell, column) => String(cell).padEnd(widths[column])).join('  ')).join('\n');
}
