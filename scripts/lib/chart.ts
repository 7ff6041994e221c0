/** A dependency-free SVG chart: one panel per series, sharing the time axis. */
export interface Series {
  label: string;
  unit: string;
  color: string;
  points: Array<{ t: number; v: number | undefined }>;
  /** Draw as steps (counts such as replicas) rather than lines. */
  step?: boolean;
}

const escape = (text: string) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);

export function svgChart(title: string, series: Series[], width = 900, panelHeight = 170): string {
  const left = 70;
  const right = 20;
  const top = 40;
  const gap = 40;
  const height = top + series.length * (panelHeight + gap);
  const tMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.t)));
  const x = (t: number) => left + (t / tMax) * (width - left - right);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
  series.forEach((s, index) => {
    const y0 = top + index * (panelHeight + gap);
    const values = s.points.map((p) => p.v).filter((v): v is number => v !== undefined && Number.isFinite(v));
    const vMax = Math.max(1, ...values) * 1.1;
    const y = (v: number) => y0 + panelHeight - (v / vMax) * panelHeight;
    parts.push(`<rect x="${left}" y="${y0}" width="${width - left - right}" height="${panelHeight}" fill="none" stroke="#ccc"/>`);
    parts.push(`<text x="${left}" y="${y0 - 6}" fill="${s.color}" font-weight="bold">${escape(s.label)} (${escape(s.unit)})</text>`);
    for (const fraction of [0, 0.5, 1]) {
      const v = (vMax / 1.1) * fraction;
      parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#666">${v >= 10 ? v.toFixed(0) : v.toFixed(1)}</text>`);
    }
    let path = '';
    let previous: { t: number; v: number } | undefined;
    for (const point of s.points) {
      if (point.v === undefined || !Number.isFinite(point.v)) {
        previous = undefined;
        continue;
      }
      if (!previous) path += `M${x(point.t).toFixed(1)},${y(point.v).toFixed(1)}`;
      else if (s.step) path += `H${x(point.t).toFixed(1)}V${y(point.v).toFixed(1)}`;
      else path += `L${x(point.t).toFixed(1)},${y(point.v).toFixed(1)}`;
      previous = { t: point.t, v: point.v };
    }
    if (path) parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    else parts.push(`<text x="${left + 10}" y="${y0 + panelHeight / 2}" fill="#999">no data</text>`);
    parts.push(`<text x="${width - right}" y="${y0 + panelHeight + 14}" text-anchor="end" fill="#666">${tMax.toFixed(0)} s</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
